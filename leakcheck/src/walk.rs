//! Frame-pointer walking: the return addresses above the caller, read from
//! this thread's stack with every load bounded, in tens of nanoseconds.
//! Linux on x86_64 and aarch64; elsewhere the walk finds nothing and call
//! chains are simply absent.

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) use linux::{self_check, walk};
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub(crate) use other::{self_check, walk};

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod linux {
    use std::cell::Cell;

    thread_local! {
        /// This thread's stack as [lowest, highest) address: (0, 0) until
        /// looked up, (0, 1) if unknown.
        static STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    /// This thread's stack bounds, or `None` if unknown.
    fn stack() -> Option<(usize, usize)> {
        let (bottom, top) = STACK
            .try_with(|stack| {
                if stack.get().1 == 0 {
                    stack.set(lookup_stack().unwrap_or((0, 1)));
                }
                stack.get()
            })
            .unwrap_or((0, 1));
        (top > 1).then_some((bottom, top))
    }

    fn lookup_stack() -> Option<(usize, usize)> {
        // SAFETY: pthread_getattr_np fills `attr` for the calling thread; it is
        // destroyed on every path after a successful init.
        unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
                return None;
            }
            let mut addr: *mut libc::c_void = std::ptr::null_mut();
            let mut size: libc::size_t = 0;
            let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
            libc::pthread_attr_destroy(&mut attr);
            (rc == 0 && !addr.is_null()).then(|| (addr as usize, addr as usize + size))
        }
    }

    #[inline(always)]
    fn frame_pointer() -> usize {
        let fp: usize;
        // SAFETY: reads a register; no memory access.
        unsafe {
            #[cfg(target_arch = "x86_64")]
            std::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags));
            #[cfg(target_arch = "aarch64")]
            std::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags));
        }
        fp
    }

    /// Walks the frame-pointer chain into `buf`, innermost return address
    /// first. Every load is bounded to [this frame, top of this thread's
    /// stack) and each step must move up the stack, so a missing or forged
    /// frame pointer ends the walk instead of faulting. Running on another
    /// stack (a coroutine's, a signal stack), it walks nothing: that range
    /// would not be one mapped region.
    #[inline(never)]
    pub(crate) fn walk(buf: &mut [usize]) -> usize {
        let Some((bottom, top)) = stack() else {
            return 0;
        };
        let here = 0u8;
        let low = std::ptr::addr_of!(here) as usize;
        if low < bottom || low >= top {
            return 0;
        }
        let word = std::mem::size_of::<usize>();
        let mut fp = frame_pointer();
        let mut n = 0;
        while n < buf.len() {
            if fp < low || fp % word != 0 || fp.saturating_add(2 * word) > top {
                break;
            }
            // SAFETY: fp and fp+word lie inside this thread's live stack
            // (checked above), which is mapped and readable.
            let (next, ret) = unsafe {
                (
                    std::ptr::read_volatile(fp as *const usize),
                    std::ptr::read_volatile((fp + word) as *const usize),
                )
            };
            if ret == 0 {
                break;
            }
            buf[n] = ret;
            n += 1;
            if next <= fp {
                break;
            }
            fp = next;
        }
        n
    }

    /// Frame pointers are usable if our walk and the DWARF unwinder agree
    /// on the callers of this function.
    #[inline(never)]
    pub(crate) fn self_check() -> bool {
        let mut walked = [0usize; 8];
        let n = walk(&mut walked);
        if n < 3 {
            return false;
        }
        let mut unwound = Vec::with_capacity(16);
        backtrace::trace(|frame| {
            unwound.push(frame.ip() as usize);
            unwound.len() < 16
        });
        walked[1..3].iter().all(|ip| unwound.contains(ip))
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod other {
    pub(crate) fn walk(_buf: &mut [usize]) -> usize {
        0
    }

    pub(crate) fn self_check() -> bool {
        false
    }
}
