//! What a C runtime would otherwise give the binary: the memory functions the compiler calls,
//! the panic handler and the unwinding personality stub. Drives no kernel interface beyond
//! write(2)/exit_group(2) in the panic handler. Compiled out of the unit tests (std has them).

use crate::msg::Line;
use crate::sys;
use core::arch::asm;

/// A panic is a bug in rinit (nothing here panics on input): say where, exit 125.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut line = Line::new().s("internal error");
    if let Some(at) = info.location() {
        line = line.s(" at ").s(at.file()).s(":").n(at.line() as i64);
    }
    line.emit();
    sys::process::exit_group(125)
}

/// The precompiled `core` has unwind tables that name this symbol; rinit is built with
/// panic=abort, so nothing ever unwinds and it is never called.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// memcpy(3).
///
/// # Safety
/// `dest` and `src` must be valid for `n` bytes and must not overlap.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: `rep movsb` copies rcx bytes from [rsi] to [rdi] going up (the ABI guarantees
    // the direction flag is clear); the caller guarantees both ranges are valid.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dest
}

/// memmove(3): like memcpy, but the ranges may overlap.
///
/// # Safety
/// `dest` and `src` must be valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // dest is below src, or past its end: a forward copy never reads a byte it wrote.
        // SAFETY: as for memcpy; overlap is harmless going forward in this case.
        return unsafe { memcpy(dest, src, n) };
    }
    // dest overlaps the tail of src: copy backwards, from the last byte down.
    // SAFETY: with the direction flag set, `rep movsb` copies from [rsi] to [rdi] going down;
    // rsi/rdi start at the last byte of each valid range. The flag is cleared again at once,
    // as the ABI requires.
    unsafe {
        asm!("std", "rep movsb", "cld",
             inout("rcx") n => _, inout("rdi") dest.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
             options(nostack));
    }
    dest
}

/// memset(3).
///
/// # Safety
/// `dest` must be valid for writes of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: `rep stosb` stores al into rcx bytes from [rdi] up; the caller guarantees them.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") c as u8,
             options(nostack, preserves_flags));
    }
    dest
}

/// memcmp(3).
///
/// # Safety
/// `a` and `b` must be valid for reads of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and the caller guarantees n readable bytes behind both pointers.
        // Volatile reads keep the compiler from turning this loop back into a memcmp call.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// bcmp(3): zero when equal (the compiler uses it for `==` on byte slices).
///
/// # Safety
/// As for [`memcmp`].
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// strlen(3) (what `CStr::from_ptr` calls).
///
/// # Safety
/// `s` must point to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller guarantees a NUL before the end of readable memory; volatile keeps
    // the compiler from turning the loop into a strlen call.
    while unsafe { s.add(n).read_volatile() } != 0 {
        n += 1;
    }
    n
}
