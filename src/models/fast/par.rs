//! Thread helpers shared by the CPU kernels: a pointer that scoped jobs may share, and a driver
//! that runs `parts` jobs on the rayon pool (job 0 on the calling thread).

/// The output pointer of one kernel call, handed to scoped jobs that write disjoint parts of it.
pub struct SendPtr(pub *mut f32);
// SAFETY: every user hands each job a region of the output no other job writes, and the jobs end
// before the call that owns the output returns (`run_parts` / a rayon scope).
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// Run `job(0..parts)`, in parallel on the rayon pool when `parts > 1`; returns when all are done.
pub fn run_parts(parts: usize, job: impl Fn(usize) + Sync) {
    if parts <= 1 {
        job(0);
        return;
    }
    let job = &job;
    rayon::scope(|s| {
        for t in 1..parts {
            s.spawn(move |_| job(t));
        }
        job(0);
    });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_every_part_once() {
        for parts in [0, 1, 2, 5] {
            let seen: Vec<AtomicUsize> = (0..parts.max(1)).map(|_| AtomicUsize::new(0)).collect();
            super::run_parts(parts, |t| {
                seen[t].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                seen.iter().all(|s| s.load(Ordering::Relaxed) == 1),
                "parts {parts}"
            );
        }
    }
}
