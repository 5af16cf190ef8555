/// Bounds on what a model file may ask of the importer, and arithmetic that reports overflow by
/// throwing instead of trapping.
///
/// Every number in a model file is untrusted: a dimension, an attribute or a constant value can
/// be chosen to overflow `Int`, to make constant folding allocate gigabytes or to make it run for
/// minutes. The importer (and the plan built from its graph) checks sizes with these helpers
/// before it allocates or indexes, so a hostile file gets a `SelfXitError`, never a trap.
enum ImportLimits {
    /// Nodes in a model graph. A 1 M-node graph already takes over a second to import; real
    /// CNNs have a few thousand.
    static let maxNodes = 1 << 20
    /// Elements one folded constant (the result of one node evaluated at load time) may have:
    /// 16 M elements, 64 MB of floats. Shape sub-graphs fold to a handful of elements; the
    /// largest legitimate folds transpose or reshape one weight tensor (a 4096 × 4096 one fits).
    static let maxFoldElements = 1 << 24
    /// Elements all constant folds of one import may produce together (128 M: under two
    /// seconds of work), so a long chain of large folds cannot hold the import for minutes.
    static let maxFoldWork = 1 << 27
    /// Elements of a per-thread scratch buffer a kernel may ask for (1 GiB of floats).
    static let maxScratchFloats = 1 << 28
}

/// `a * b`, or nil on overflow.
@inline(__always)
func checkedMultiply(_ a: Int, _ b: Int) -> Int? {
    let (p, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? nil : p
}

/// `a + b`, or nil on overflow.
@inline(__always)
func checkedAdd(_ a: Int, _ b: Int) -> Int? {
    let (s, overflow) = a.addingReportingOverflow(b)
    return overflow ? nil : s
}

/// Element count of a tensor of shape `dims`, or nil when a dimension is negative or the
/// product of the NON-ZERO dimensions overflows.
///
/// Zero dimensions are skipped for the overflow test on purpose: a shape like
/// `[0, 2^62, 4]` has zero elements, yet any sub-product taken later (the inner size of a
/// Gather or a Flatten, `[2^62, 4]` → 2^64) would trap. With this rule, once a shape passes,
/// every product of any subset of its dimensions fits in `Int`.
func checkedElementCount(_ dims: some Collection<Int>) -> Int? {
    var nonZero = 1
    var hasZero = false
    for d in dims {
        guard d >= 0 else { return nil }
        if d == 0 { hasZero = true; continue }
        guard let p = checkedMultiply(nonZero, d) else { return nil }
        nonZero = p
    }
    return hasZero ? 0 : nonZero
}

/// Product of `dims` for shapes already validated with `checkedElementCount` (no overflow is
/// possible then); wrapping arithmetic so that even a broken invariant cannot trap.
@inline(__always)
func uncheckedProduct(_ dims: some Collection<Int>) -> Int {
    dims.reduce(1, &*)
}
