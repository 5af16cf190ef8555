import FoundationEssentials
import Glibc

/// Inference with early exits (paper, Algorithm 1).
extension Engine {
    /// Runs `batch` samples (batch × inputCount floats, contiguous) and calls `onResult` once
    /// per sample, on the calling thread, as soon as that sample is resolved: samples whose
    /// calibrated confidence at an active exit reaches its threshold are answered there, the
    /// batch shrinks to the rest, and the backbone's classifier answers what is left.
    ///
    /// Samples that run the full backbone are recorded for the next exit build (within the
    /// collection budget). A sample whose input holds NaN/±inf (accepted only with
    /// `EngineOptions.nonFiniteInputs = .propagate`, refused otherwise) or whose output
    /// distribution is not finite (e.g. a finite input so large the activations overflow) is
    /// answered by the backbone only, with `nonFinite` set, class −1 and confidence 0, and is
    /// never recorded. Thread-safe; `onResult` runs between kernel launches, so it may
    /// itself submit work (to this engine or another).
    public func submit(_ input: UnsafeBufferPointer<Float>, batch: Int, onResult: (ExitResult) -> Void) throws {
        // Detector/host teachers, watched classes, all-exits mode: Engine+Watch.
        if usesTeacherPath { return try submitWithTeacher(input, batch: batch, labels: nil, onResult: onResult) }
        try refusePlannedAnswerOfTail("submit")
        try validate(input, batch: batch)
        let start = MonotonicClock.nanoseconds()
        // Per sample, whether its input holds NaN/±inf (nil: none does, the common case).
        let nonFiniteInput = nonFiniteSamples(input, batch: batch)
        func inputIsNonFinite(_ sample: Int) -> Bool { nonFiniteInput?[sample] ?? false }
        let exits = activeExits
        // Audited serving and the live guard (issue 16, Exits/ExitServing.swift).
        let view = serving.view(for: exits)
        var audit = SubmitAudit(batch: batch, exits: exits?.active.count ?? 0, view: view)
        defer { serving.note(view, frames: batch, answered: audit.answered) }
        let workspace = try workspaces.take(capacity: batch) { try plan.makeWorkspace(capacity: $0) }
        defer { workspaces.give(workspace) }
        let graph = plan.graph
        let classes = outputCount
        let source = input.baseAddress!
        plan.pointer(graph.input, in: workspace).update(from: source, count: batch * inputCount)

        // Caller-sized, so from the workspace (checked, kept) rather than a Swift array, whose
        // allocation would abort the process when memory runs out.
        let probabilities = try workspace.results(batch * classes)
        var rows = Array(0..<batch)            // original sample index of each live row
        var position = 0                       // next node to run
        var headFLOPs = 0                      // heads every live row has passed so far
        func elapsed() -> Double { Double(MonotonicClock.nanoseconds() - start) / 1e9 }

        for (exitPosition, exit) in (exits?.active ?? []).enumerated() {
            if audit.isOutOfService(exitPosition) { continue }  // taken out by the live guard
            plan.run(position..<(exit.candidate.afterNode + 1), rows: rows.count, in: workspace)
            position = exit.candidate.afterNode + 1
            let scratch = try workspace.auxiliary(exit.head.scratchFloats(rows: rows.count, threads: plan.pool.threadCount))
            exit.head.probabilities(plan.pointer(exit.candidate.value, in: workspace), rows: rows.count, output: probabilities.baseAddress!,
                                    scratch: scratch, pool: plan.pool)
            headFLOPs += exit.head.flops
            let flops = exit.candidate.flopsBefore + headFLOPs
            var keep: [Int] = []
            keep.reserveCapacity(rows.count)
            for row in rows.indices {
                if audit.isAudited(rows[row]) { keep.append(row); continue }  // answered earlier, being audited
                let distribution = UnsafeBufferPointer(rebasing: probabilities[(row * classes)..<((row + 1) * classes)])
                let (best, confidence) = Self.argmax(distribution)
                // A non-finite sample (or head output: argmax gives −1) never leaves early.
                guard best >= 0, confidence >= exit.threshold, !inputIsNonFinite(rows[row]) else { keep.append(row); continue }
                let latency = elapsed()
                statistics.record(exitIndex: exit.candidateIndex, flops: flops, latency: latency)
                onResult(ExitResult(sampleIndex: rows[row], exitIndex: exit.candidateIndex, classIndex: best,
                                    confidence: confidence, probabilities: distribution, flops: flops, latency: latency,
                                    nonFinite: false))
                audit.answered[exitPosition] += 1
                // Audited: the frame goes on through the full model after its answer.
                if audit.view.isAuditing, serving.draw(audit.view) {
                    audit.mark(rows[row], position: exitPosition, classIndex: best, flops: flops)
                    keep.append(row)
                }
            }
            if keep.count < rows.count {
                plan.compact(exit.candidate.value, keeping: keep, in: workspace)
                rows = keep.map { rows[$0] }
            }
            if rows.isEmpty { return }
        }

        plan.run(position..<graph.nodes.count, rows: rows.count, in: workspace)
        let output = plan.pointer(graph.outputs[0], in: workspace)
        let flops = backboneFLOPs + headFLOPs
        for row in rows.indices {
            let distribution = UnsafeMutableBufferPointer(rebasing: probabilities[(row * classes)..<((row + 1) * classes)])
            toProbabilities(output + row * classes, into: distribution)
        }
        // Which live rows are non-finite (input or output); they get no class and are not recorded.
        let nonFinite = rows.indices.map { row in
            inputIsNonFinite(rows[row]) || !allFinite(UnsafeBufferPointer(rebasing: probabilities[(row * classes)..<((row + 1) * classes)]))
        }
        // While exits serve, collection is thinned to the audit rate (audited frames always in),
        // so every frame has the same chance of being recorded (see ExitServing.swift).
        let skip = rows.indices.map { row in
            nonFinite[row] || (audit.thinsCollection && !audit.isAudited(rows[row]) && !serving.draw(audit.view))
        }
        try recordForTraining(rows: rows, input: source, probabilities: probabilities.baseAddress!, skip: skip, in: workspace)
        var outcomes: [(position: Int, agrees: Bool)] = []
        var auditFLOPs = 0.0
        for row in rows.indices where audit.isAudited(rows[row]) && !nonFinite[row] {
            let distribution = UnsafeBufferPointer(rebasing: probabilities[(row * classes)..<((row + 1) * classes)])
            let (position, exitClass, exitFLOPs) = audit.answer(rows[row])
            outcomes.append((position, Self.argmax(distribution).0 == exitClass))
            auditFLOPs += Double(flops - exitFLOPs)
        }
        if !outcomes.isEmpty { servingTripped(serving.recordAudits(view, outcomes, extraFLOPs: auditFLOPs).tripped) }
        servingCollected(collector.capacity > 0 ? skip.filter { !$0 }.count : 0)
        for row in rows.indices where !audit.isAudited(rows[row]) {
            let distribution = UnsafeBufferPointer(rebasing: probabilities[(row * classes)..<((row + 1) * classes)])
            let (best, confidence) = nonFinite[row] ? (-1, 0) : Self.argmax(distribution)
            let latency = elapsed()
            statistics.record(exitIndex: -1, flops: flops, latency: latency)
            onResult(ExitResult(sampleIndex: rows[row], exitIndex: -1, classIndex: best, confidence: confidence,
                                probabilities: distribution, flops: flops, latency: latency, nonFinite: nonFinite[row]))
        }
    }

    public func submit(_ input: [Float], batch: Int, onResult: (ExitResult) -> Void) throws {
        try input.withUnsafeBufferPointer { try submit($0, batch: batch, onResult: onResult) }
    }

    /// All-exits analysis: runs the full backbone with no early exit and reports, per
    /// sample, every trained exit's prediction beside the backbone's answer. A prediction
    /// from a non-finite distribution (or input) has class −1 and confidence 0, never `wouldExit`.
    public func analyze(_ input: UnsafeBufferPointer<Float>, batch: Int) throws -> [ExitAnalysis] {
        try validate(input, batch: batch)
        guard let configuration = exitConfiguration else { throw SelfXitError.wrongState("no exits are built: call updateExits first") }
        let workspace = try workspaces.take(capacity: batch) { try plan.makeWorkspace(capacity: $0) }
        defer { workspaces.give(workspace) }
        let graph = plan.graph, classes = teacherClasses
        plan.pointer(graph.input, in: workspace).update(from: input.baseAddress!, count: batch * inputCount)
        let nonFiniteInput = nonFiniteSamples(input, batch: batch)
        var predictions = [[ExitAnalysis.Prediction]](repeating: [], count: batch)
        var probabilities = [Float](repeating: 0, count: batch * classes)
        var position = 0
        let activeIndices = Set(configuration.active.map(\.candidateIndex))
        for exit in configuration.trained {
            plan.run(position..<(exit.candidate.afterNode + 1), rows: batch, in: workspace)
            position = exit.candidate.afterNode + 1
            probabilities.withUnsafeMutableBufferPointer { out in
                exit.head.probabilities(plan.pointer(exit.candidate.value, in: workspace), rows: batch, output: out.baseAddress!, pool: plan.pool)
            }
            for row in 0..<batch {
                let (best, confidence) = probabilities.withUnsafeBufferPointer {
                    Self.argmax(UnsafeBufferPointer(rebasing: $0[(row * classes)..<((row + 1) * classes)]))
                }
                predictions[row].append(.init(exitIndex: exit.candidateIndex, classIndex: best, confidence: confidence,
                                              wouldExit: activeIndices.contains(exit.candidateIndex) && best >= 0
                                                  && confidence >= exit.threshold && !(nonFiniteInput?[row] ?? false)))
            }
        }
        plan.run(position..<graph.nodes.count, rows: batch, in: workspace)
        let output = plan.pointer(graph.outputs[0], in: workspace)
        return (0..<batch).map { row in
            var distribution = [Float](repeating: 0, count: classes)
            distribution.withUnsafeMutableBufferPointer { out in
                if teacher.isClassifier { toProbabilities(output + row * classes, into: out) } else {
                    // Detector teacher (host labels: unknown here, all zero → class 0 of a zero row).
                    _ = teacher.distribution(row: row, pointer: { plan.pointer($0, in: workspace) }, graph: graph, into: out)
                }
            }
            let (best, confidence) = nonFiniteInput?[row] ?? false ? (-1, 0) : distribution.withUnsafeBufferPointer { Self.argmax($0) }
            return ExitAnalysis(sampleIndex: row, exits: predictions[row], backboneClass: best, backboneConfidence: confidence)
        }
    }

    // MARK: - Helpers

    /// Index and value of the largest entry (first on ties); (−1, 0) when any entry is NaN or
    /// ±inf — no class of such a distribution can be trusted (comparisons with NaN are false,
    /// so a plain argmax would pick a class anyway). Precondition: non-empty.
    static func argmax(_ values: UnsafeBufferPointer<Float>) -> (Int, Float) {
        guard allFinite(values) else { return (-1, 0) }
        var best = 0
        for index in values.indices where values[index] > values[best] { best = index }
        return (best, values[best])
    }

    /// The model's output row as a probability distribution (softmax of logits, unless the
    /// model ends in Softmax already).
    func toProbabilities(_ row: UnsafePointer<Float>, into out: UnsafeMutableBufferPointer<Float>) {
        guard let target = out.baseAddress else { return }
        if outputIsProbability {
            target.update(from: row, count: out.count)
        } else {
            softmax(input: row, output: target, rows: 1, n: out.count, pool: plan.pool)
        }
    }

    /// Records samples that ran the full backbone as training data for the exits, except the
    /// rows marked in `skip` (non-finite: NaN teachers or inputs would poison exit training).
    /// `probabilities` holds the rows' teacher distributions, row-major. Throws `outOfMemory`
    /// when the workspace cannot hold the gathered inputs.
    private func recordForTraining(rows: [Int], input: UnsafePointer<Float>, probabilities: UnsafePointer<Float>,
                                   skip: [Bool], in workspace: Workspace) throws {
        guard collector.capacity > 0, !rows.isEmpty else { return }
        let kept = rows.indices.filter { !skip[$0] }
        guard !kept.isEmpty else { return }
        let gathered = try workspace.gathering(kept.count * inputCount)
        for (slot, row) in kept.enumerated() {
            (gathered + slot * inputCount).update(from: input + rows[row] * inputCount, count: inputCount)
        }
        if kept.count == rows.count {
            collector.record(inputs: gathered, teacher: probabilities, rows: rows.count)
        } else {
            // Teachers of the kept rows are not contiguous: one row at a time (rare: only
            // batches holding a non-finite sample take this path).
            let classes = outputCount
            for (slot, row) in kept.enumerated() {
                collector.record(inputs: gathered + slot * inputCount, teacher: probabilities + row * classes, rows: 1)
            }
        }
    }
}


/// One submit call's audit bookkeeping (issue 16): which frames are being audited, from which
/// exit and with which answer, and how many each exit answered.
struct SubmitAudit {
    let view: ExitServingMonitor.View
    var answered: [Int]
    private var position: [Int]
    private var classIndex: [Int]
    private var flops: [Int]
    private var any = false

    init(batch: Int, exits: Int, view: ExitServingMonitor.View) {
        self.view = view
        answered = Array(repeating: 0, count: exits)
        // Per-sample arrays only when audits can happen (the common path allocates nothing).
        position = view.isAuditing ? Array(repeating: -1, count: batch) : []
        classIndex = view.isAuditing ? Array(repeating: -1, count: batch) : []
        flops = view.isAuditing ? Array(repeating: 0, count: batch) : []
    }

    /// Collection is thinned while at least one exit serves and the audit rate is > 0.
    var thinsCollection: Bool { view.isAuditing && view.outOfService.contains(false) }

    func isOutOfService(_ exitPosition: Int) -> Bool {
        exitPosition < view.outOfService.count && view.outOfService[exitPosition]
    }

    func isAudited(_ sample: Int) -> Bool { any && position[sample] >= 0 }

    mutating func mark(_ sample: Int, position exitPosition: Int, classIndex best: Int, flops spent: Int) {
        any = true
        position[sample] = exitPosition
        classIndex[sample] = best
        flops[sample] = spent
    }

    func answer(_ sample: Int) -> (position: Int, classIndex: Int, flops: Int) {
        (position[sample], classIndex[sample], flops[sample])
    }
}
