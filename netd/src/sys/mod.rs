//! The kernel-facing code of netd, one interface per module; every `unsafe` block of netd is
//! here, each with a SAFETY comment.

pub mod netlink;
pub mod netns;
pub mod signal;
