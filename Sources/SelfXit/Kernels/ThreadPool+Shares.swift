extension ThreadPool {
    /// Calls `body(share, item)` for every `item` in `0..<itemsPerShare` of each of `threadCount`
    /// shares, and returns when all calls have finished.
    ///
    /// Job index `t` works through share `t` first and then helps with the others. Kernels that
    /// split every layer the same way (by rows of the plane) so get the same share onto the same
    /// core from one layer to the next, where the previous layer left its output in that core's
    /// cache, while a slow core's leftovers are still taken by the others. Precondition as
    /// `parallelFor`: not called from inside a `body`.
    func parallelForShares(itemsPerShare: Int, _ body: (_ share: Int, _ item: Int) -> Void) {
        guard itemsPerShare > 0 else { return }
        let shares = threadCount
        let next = (0..<shares).map { _ in TaskCounter() }
        parallelFor(shares) { t in
            for o in 0..<shares {
                let share = (t + o) % shares
                while true {
                    let item = next[share].take()
                    if item >= itemsPerShare { break }
                    body(share, item)
                }
            }
        }
    }
}
