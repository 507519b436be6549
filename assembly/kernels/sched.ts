// sched.ts — how the threads of a kernel call share its units of work.

/**
 * The next unit of work for this thread (start with prev = −1; done when it reaches the number of
 * units). With threads (the shared-memory builds) the threads take units from a counter at ctr,
 * which the host zeroes before the call, so a thread that the OS runs late simply takes fewer;
 * alone (or without atomics), units tid, tid + nt, … in order. A unit's result never depends on
 * which thread computes it.
 */
@inline export function nextUnit(ctr: usize, prev: i32, tid: i32, nt: i32): i32 {
  if (ASC_FEATURE_THREADS) {
    if (nt > 1) return atomic.add<i32>(ctr, 1);
  }
  return prev < 0 ? tid : prev + nt;
}
