extension ThreadPool {
    /// Calls `body(slot, item)` for every `item` in `0..<count` and returns when all calls have
    /// finished. Items are handed out one at a time as workers free up (the cores of a shared
    /// machine rarely run at the same speed) to `slots` workers (at most `threadCount`; all by
    /// default); `slot` is the worker's job index, so a worker's scratch can be picked by it.
    /// Precondition as `parallelFor`: not called from inside a `body`.
    func parallelForItems(_ count: Int, slots: Int? = nil, _ body: (_ slot: Int, _ item: Int) -> Void) {
        guard count > 0 else { return }
        let next = TaskCounter()
        parallelFor(slots ?? threadCount) { slot in
            while true {
                let item = next.take()
                if item >= count { break }
                body(slot, item)
            }
        }
    }

    /// Calls `body(share, item)` for every `item` in `0..<itemsPerShare` of each of `threadCount`
    /// shares, and returns when all calls have finished.
    ///
    /// Thread `t` (`parallelForEachThread`: the same thread on every call) works through share
    /// `t` first and then helps with the others. Kernels that split every layer the same way (by
    /// rows of the plane) so get the same share onto the same core from one layer to the next,
    /// where the previous layer left its output in that core's cache, while a slow core's
    /// leftovers are still taken by the others. Precondition as `parallelFor`: not called from
    /// inside a `body`.
    func parallelForShares(itemsPerShare: Int, _ body: (_ share: Int, _ item: Int) -> Void) {
        parallelForSharesOnThreads(itemsPerShare: itemsPerShare) { _, share, item in body(share, item) }
    }

    /// `parallelForShares` with the index of the thread running each call (`0..<threadCount`)
    /// first: a thread that has moved on to another share's items still picks its own scratch.
    func parallelForSharesOnThreads(itemsPerShare: Int, _ body: (_ thread: Int, _ share: Int, _ item: Int) -> Void) {
        guard itemsPerShare > 0 else { return }
        let shares = threadCount
        let next = (0..<shares).map { _ in TaskCounter() }
        parallelForEachThread { t in
            for o in 0..<shares {
                let share = (t + o) % shares
                while true {
                    let item = next[share].take()
                    if item >= itemsPerShare { break }
                    body(t, share, item)
                }
            }
        }
    }
}
