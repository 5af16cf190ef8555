import FoundationEssentials
import Glibc

/// Whether every trained exit's prediction is reported (the paper's "all exits, no shrinking"
/// mode, §4.3). Its own lock: switching it never waits for inference.
final class ServingModeState: @unchecked Sendable {
    private let lock = PosixLock()
    private var allExitsValue = false
    var allExits: Bool {
        get { lock.lock(); defer { lock.unlock() }; return allExitsValue }
        set { lock.lock(); allExitsValue = newValue; lock.unlock() }
    }
}

/// Detector teachers, watched classes, warn early and confirm later (issue 12; paper §3.5,
/// §3.5.1, §4.3).
extension Engine {
    /// Classes of the distribution exits learn and answer in (the classifier's outputs, the
    /// detector's classes with background as "none", or the host's label count).
    public var teacherClasses: Int { teacher.classes }
    /// The teacher's "none" class (nothing detected), nil for classifiers and host labels.
    public var teacherNoneClass: Int? { teacher.noneClass }
    /// The watched classes in force: the engine's options', or — when those name none — the
    /// ones the exits in service were built or loaded with (an exit bundle of format 2 records
    /// them with their guards, so a host that reloads its exits keeps the safety rule).
    public var watchedClasses: [WatchedClass] { watchedForBuild }

    /// What a build watches: the options' classes, else those of the installed exits (a
    /// rebuild of exits loaded from a bundle keeps the bundle's watched classes).
    var watchedForBuild: [WatchedClass] {
        options.watched.isEmpty ? (exitConfiguration?.watched ?? []) : options.watched
    }

    /// All-exits mode: every trained exit's prediction is reported (`ExitResult.Kind.exitPrediction`)
    /// and no sample leaves early; the full model's answer closes each sample.
    public func setAllExitsMode(_ on: Bool) { servingMode.allExits = on }
    public var allExitsMode: Bool { servingMode.allExits }

    /// The teacher distributions (batch × teacherClasses) of the full model on `input` — what
    /// exits are taught and judged against. Throws `wrongState` for a host-label teacher.
    public func teacherDistributions(_ input: [Float], batch: Int) throws -> [Float] {
        guard !isHostTeacher else { throw SelfXitError.wrongState("a host-label teacher's distributions come from the host") }
        return try input.withUnsafeBufferPointer { input in
            try runFullModel(input, batch: batch) { workspace in
                var out = [Float](repeating: 0, count: batch * teacherClasses)
                out.withUnsafeMutableBufferPointer { out in
                    for row in 0..<batch {
                        _ = teacher.distribution(row: row, pointer: { plan.pointer($0, in: workspace) }, graph: plan.graph,
                                                 into: UnsafeMutableBufferPointer(rebasing: out[(row * teacherClasses)..<((row + 1) * teacherClasses)]))
                    }
                }
                return out
            }
        }
    }

    var isHostTeacher: Bool { if case .host = teacher.kind { return true } else { return false } }

    /// Whether `submit` takes the teacher path below (anything but a plain classifier).
    var usesTeacherPath: Bool {
        !teacher.isClassifier || !options.watched.isEmpty || servingMode.allExits || !(activeExits?.watched ?? []).isEmpty
    }

    /// `submit` with the host's teacher labels (a host-label teacher): `labels[i]` is sample i's
    /// class per the host's own detector, or −1 for a sample it did not judge. Samples that run
    /// the full model are recorded with their label (unlabelled ones are not recorded), and a
    /// full-model answer reports the label (−1 when there is none). Throws `invalidArgument`
    /// (nothing runs) for labels of the wrong length or a class out of range.
    public func submit(_ input: UnsafeBufferPointer<Float>, batch: Int, labels: [Int], onResult: (ExitResult) -> Void) throws {
        guard labels.count == batch else {
            throw SelfXitError.invalidArgument("host labels: \(labels.count) labels for a batch of \(batch)")
        }
        if let bad = labels.firstIndex(where: { $0 < -1 || $0 >= teacherClasses }) {
            throw SelfXitError.invalidArgument("host label \(labels[bad]) of sample \(bad) is out of range: the teacher has \(teacherClasses) classes (−1: none)")
        }
        guard isHostTeacher else {
            throw SelfXitError.invalidArgument("host labels need the host-label teacher (EngineOptions.teacher = .hostLabels)")
        }
        try submitWithTeacher(input, batch: batch, labels: labels, onResult: onResult)
    }

    public func submit(_ input: [Float], batch: Int, labels: [Int], onResult: (ExitResult) -> Void) throws {
        try input.withUnsafeBufferPointer { try submit($0, batch: batch, labels: labels, onResult: onResult) }
    }

    /// Inference with a teacher other than the classifier, watched classes or all-exits mode.
    /// As `submit`, plus: an exit whose prediction is a watched class at or above its warn
    /// threshold sends a `.warning` at once and the sample runs on (the full model's answer
    /// follows as a `.confirmation`); an exit answers a non-watched class early only at or
    /// above both its tolerance threshold and its guard's safe threshold (exits without guards —
    /// a bundle of format 1, or one built without watched classes — never do). The watched
    /// classes are those the exits were built or loaded with, else the options'. In all-exits
    /// mode every trained exit reports an `.exitPrediction` and nothing leaves early.
    func submitWithTeacher(_ input: UnsafeBufferPointer<Float>, batch: Int, labels: [Int]?, onResult: (ExitResult) -> Void) throws {
        try refusePlannedAnswerOfTail("submit")
        try validate(input, batch: batch)
        let start = MonotonicClock.nanoseconds()
        let nonFiniteInput = nonFiniteSamples(input, batch: batch)
        func inputIsNonFinite(_ sample: Int) -> Bool { nonFiniteInput?[sample] ?? false }
        let allExits = servingMode.allExits
        let configuration = allExits ? exitConfiguration : activeExits
        // Served: the active exits and, with watched classes, the warning exits chosen on their
        // own terms (ExitPolicy.warningExits), which only warn — a trained exit that is not
        // active has threshold +inf and a safe threshold of +inf, so it never answers.
        let exitList: [ExitConfiguration.Exit]
        if allExits {
            exitList = configuration?.trained ?? []
        } else if let configuration, let watch = configuration.watch {
            let activeSet = Set(configuration.active.map(\.candidateIndex))
            exitList = configuration.trained.filter { activeSet.contains($0.candidateIndex) || watch[$0.candidateIndex] != nil }
        } else {
            exitList = configuration?.active ?? []
        }
        let watched = configuration?.watched ?? options.watched
        let watchedIndex = Dictionary(uniqueKeysWithValues: watched.enumerated().map { ($1.classIndex, $0) })
        let workspace = try workspaces.take(capacity: batch) { try plan.makeWorkspace(capacity: $0) }
        defer { workspaces.give(workspace) }
        let graph = plan.graph
        let classes = teacherClasses
        let source = input.baseAddress!
        plan.pointer(graph.input, in: workspace).update(from: source, count: batch * inputCount)
        let probabilities = try workspace.results(batch * classes)
        var rows = Array(0..<batch)
        var position = 0
        var headFLOPs = 0
        var warned = [Bool](repeating: false, count: batch)
        func elapsed() -> Double { Double(MonotonicClock.nanoseconds() - start) / 1e9 }

        for exit in exitList {
            plan.run(position..<(exit.candidate.afterNode + 1), rows: rows.count, in: workspace)
            position = exit.candidate.afterNode + 1
            let scratch = try workspace.auxiliary(exit.head.scratchFloats(rows: rows.count, threads: plan.pool.threadCount))
            exit.head.probabilities(plan.pointer(exit.candidate.value, in: workspace), rows: rows.count, output: probabilities.baseAddress!,
                                    scratch: scratch, pool: plan.pool)
            headFLOPs += exit.head.flops
            let flops = exit.candidate.flopsBefore + headFLOPs
            let guardOf = configuration?.watch?[exit.candidateIndex]
            var keep: [Int] = []
            keep.reserveCapacity(rows.count)
            for row in rows.indices {
                let sample = rows[row]
                let distribution = UnsafeBufferPointer(rebasing: probabilities[(row * classes)..<((row + 1) * classes)])
                let (best, confidence) = Self.argmax(distribution)
                func report(_ kind: ExitResult.Kind) {
                    onResult(ExitResult(sampleIndex: sample, exitIndex: exit.candidateIndex, classIndex: best, confidence: confidence,
                                        probabilities: distribution, flops: flops, latency: elapsed(), nonFinite: false, kind: kind))
                }
                if allExits {
                    if best >= 0, !inputIsNonFinite(sample) { report(.exitPrediction) }
                    keep.append(row)
                    continue
                }
                guard best >= 0, !inputIsNonFinite(sample) else { keep.append(row); continue }
                if let w = watchedIndex[best] {
                    // A watched class: warn (once per sample) and run on for the confirmation.
                    let threshold = guardOf?.warnThresholds[w] ?? watched[w].warnThreshold ?? exit.threshold
                    if !warned[sample], confidence >= threshold {
                        warned[sample] = true
                        report(.warning)
                    }
                    keep.append(row)
                    continue
                }
                // A warned sample is confirmed by the full model, never answered early.
                if warned[sample] { keep.append(row); continue }
                let safe = watched.isEmpty ? 0 : (guardOf?.safeThreshold ?? .infinity)
                guard confidence >= exit.threshold, confidence >= safe else { keep.append(row); continue }
                let latency = elapsed()
                statistics.record(exitIndex: exit.candidateIndex, flops: flops, latency: latency)
                onResult(ExitResult(sampleIndex: sample, exitIndex: exit.candidateIndex, classIndex: best, confidence: confidence,
                                    probabilities: distribution, flops: flops, latency: latency, nonFinite: false, kind: .answer))
            }
            if keep.count < rows.count {
                plan.compact(exit.candidate.value, keeping: keep, in: workspace)
                rows = keep.map { rows[$0] }
            }
            if rows.isEmpty { return }
        }

        plan.run(position..<graph.nodes.count, rows: rows.count, in: workspace)
        let flops = backboneFLOPs + headFLOPs
        // The teacher of each remaining row: computed from the outputs, or the host's label.
        var hasTeacher = [Bool](repeating: true, count: rows.count)
        for row in rows.indices {
            let distribution = UnsafeMutableBufferPointer(rebasing: probabilities[(row * classes)..<((row + 1) * classes)])
            if isHostTeacher {
                for j in distribution.indices { distribution[j] = 0 }
                if let label = labels?[rows[row]], label >= 0 { distribution[label] = 1 } else { hasTeacher[row] = false }
            } else {
                _ = teacher.distribution(row: row, pointer: { plan.pointer($0, in: workspace) }, graph: graph, into: distribution)
            }
        }
        let nonFinite = rows.indices.map { row in
            inputIsNonFinite(rows[row]) || !allFinite(UnsafeBufferPointer(rebasing: probabilities[(row * classes)..<((row + 1) * classes)]))
        }
        try recordRows(rows: rows, input: source, probabilities: probabilities.baseAddress!,
                       skip: rows.indices.map { nonFinite[$0] || !hasTeacher[$0] }, in: workspace)
        for row in rows.indices {
            let distribution = UnsafeBufferPointer(rebasing: probabilities[(row * classes)..<((row + 1) * classes)])
            let (best, confidence) = nonFinite[row] || !hasTeacher[row] ? (-1, 0) : Self.argmax(distribution)
            let latency = elapsed()
            statistics.record(exitIndex: -1, flops: flops, latency: latency)
            onResult(ExitResult(sampleIndex: rows[row], exitIndex: -1, classIndex: best, confidence: confidence,
                                probabilities: distribution, flops: flops, latency: latency, nonFinite: nonFinite[row],
                                kind: warned[rows[row]] ? .confirmation : .answer))
        }
    }

    /// Records full-model rows (as `submit` does) except those marked in `skip`.
    private func recordRows(rows: [Int], input: UnsafePointer<Float>, probabilities: UnsafePointer<Float>, skip: [Bool],
                            in workspace: Workspace) throws {
        guard collector.capacity > 0 else { return }
        let kept = rows.indices.filter { !skip[$0] }
        guard !kept.isEmpty else { return }
        let gathered = try workspace.gathering(kept.count * inputCount)
        for (slot, row) in kept.enumerated() {
            (gathered + slot * inputCount).update(from: input + rows[row] * inputCount, count: inputCount)
            collector.record(inputs: gathered + slot * inputCount, teacher: probabilities + row * teacherClasses, rows: 1)
        }
    }

    /// The watched-class guards of the active exits chosen by a build (ExitPolicy.watchGuards).
    func watchGuards(_ active: [Int], trained: [ExitConfiguration.Exit], validation: ExitValidationRecord,
                     watched: [WatchedClass], tolerance: Double, costs: ExitCosts) -> [ExitWatchGuard] {
        ExitPolicy.watchGuards(teacherClass: validation.backboneClass, confidence: validation.confidence,
                               predicted: validation.predictedClass, candidateIndex: trained.map(\.candidateIndex),
                               active: active, watched: watched, tolerance: tolerance, costs: costs)
    }
}
