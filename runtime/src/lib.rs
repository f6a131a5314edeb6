//! placeholder: see DESIGN.md
pub mod cgroups;
