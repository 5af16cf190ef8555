import FoundationEssentials
import Glibc

/// Building exits from collected traffic: search → train → calibrate → thresholds → subset
/// (paper §3.2–§3.4), all on the engine's own recordings, no labels.
extension Engine {
    /// Builds exits from the samples collected so far and puts them in service. On any
    /// error the engine keeps serving with its previous exits.
    ///
    /// Activations of each candidate layer are recomputed from the recorded inputs, one layer
    /// after the other: the segment between two candidates runs on the previous layer's
    /// activations, so the whole build costs one backbone pass over the samples and holds at
    /// most two layers' activations at a time.
    ///
    /// `options.onProgress` hears about every stage and can cancel (`SelfXitError.cancelled`,
    /// the previous exits staying); it runs on this thread, between steps, never concurrently.
    @discardableResult
    public func updateExits(_ options: ExitBuildOptions = ExitBuildOptions()) throws -> ExitBuildReport {
        let options = try options.validated()
        let start = MonotonicClock.nanoseconds()
        // Threads of this build: a 1-thread build (e.g. in the background) runs the backbone
        // segments and heads on its own thread only, leaving the pool's cores to inference.
        let buildThreads = min(options.threads ?? plan.pool.threadCount, plan.pool.threadCount)
        let serial = buildThreads < plan.pool.threadCount && buildThreads == 1
        let headPool = serial ? ThreadPool.serial() : plan.pool
        var segmentSeconds: [Double] = []  // per candidate: the segment before it, per sample
        let monitor = ExitBuildMonitor(options.onProgress)
        try monitor.report(.prepare, 0, "checking the collected samples")
        guard !candidates.isEmpty else { throw SelfXitError.wrongState("the model has no exit candidates (too few layers or no single-tensor cut points)") }
        let recorded = collector.snapshot()
        guard recorded.count >= options.minimumSamples else {
            throw SelfXitError.wrongState("only \(recorded.count) samples collected; an exit build needs at least \(options.minimumSamples)")
        }
        // The largest candidate bounds how many samples fit in the memory budget (two layers held).
        let largest = candidates.map { $0.shape.reduce(1, *) }.max() ?? 1
        let usable = min(recorded.count, options.memoryBudgetBytes / (2 * largest * MemoryLayout<Float>.stride))
        guard usable >= options.minimumSamples else {
            throw SelfXitError.invalidArgument("memoryBudgetBytes \(options.memoryBudgetBytes) holds only \(usable) samples of the largest candidate layer")
        }
        let classes = teacherClasses
        var random = SeededRandom(seed: options.seed)
        let order = options.keepOrder ? Array(0..<usable) : Array((0..<recorded.count).shuffled(using: &random).prefix(usable))
        let trainCount = Int(Double(usable) * options.trainFraction)
        let validationCount = Int(Double(usable) * options.validationFraction)
        let split = (train: 0..<trainCount, validation: trainCount..<(trainCount + validationCount),
                     test: (trainCount + validationCount)..<usable)
        guard trainCount >= 1, validationCount >= 1 else { throw SelfXitError.invalidArgument("the split leaves an empty train or validation part") }
        let teacher = order.flatMap { recorded.teacher[($0 * classes)..<(($0 + 1) * classes)] }
        let backboneClass = (0..<usable).map { row in
            teacher[(row * classes)..<((row + 1) * classes)].enumerated().max { $0.element < $1.element }!.offset
        }
        func part(_ values: [Float], width: Int, _ range: Range<Int>) -> [Float] {
            Array(values[(range.lowerBound * width)..<(range.upperBound * width)])
        }
        options.progress?("exit build: \(usable) samples (train \(split.train.count), validation \(split.validation.count), test \(split.test.count)), \(candidates.count) candidate layers")
        try monitor.report(.prepare, 0.01, "\(usable) samples, \(candidates.count) candidate layers")
        // Progress shares: 2 % preparing, 93 % the candidates (each: 10 % backbone activations,
        // 90 % head search and training), the rest selection.
        let candidateShare = 0.93 / Double(candidates.count)

        var activations = order.flatMap { recorded.inputs[($0 * inputCount)..<(($0 + 1) * inputCount)] }
        var activationValue = plan.graph.input
        var position = 0
        var trained: [ExitConfiguration.Exit] = []
        var trainedReports: [ExitBuildReport.Exit] = []
        var validationConfidence: [[Float]] = [], validationPrediction: [[Int]] = []
        var testConfidence: [[Float]] = [], testPrediction: [[Int]] = []
        var config = ExitTrainingConfig()
        config.epochs = options.epochs
        config.seed = options.seed
        config.threads = buildThreads

        for (index, candidate) in candidates.enumerated() {
            let base = 0.02 + candidateShare * Double(index)
            let label = "candidate \(index + 1)/\(candidates.count) '\(plan.graph.values[candidate.value].name)'"
            try monitor.report(.activations, base, "\(label): backbone activations")
            let segmentStart = MonotonicClock.nanoseconds()
            activations = try advance(activations, from: activationValue, position: position, to: candidate, rows: usable, serial: serial) { f in
                try monitor.poll(base + candidateShare * 0.1 * f)
            }
            segmentSeconds.append(Double(MonotonicClock.nanoseconds() - segmentStart) / 1e9 / Double(usable))
            activationValue = candidate.value
            position = candidate.afterNode + 1
            let width = candidate.shape.reduce(1, *)
            let trainData = DistillationData(features: part(activations, width: width, split.train),
                                             teacher: part(teacher, width: classes, split.train), count: split.train.count)
            let validationData = DistillationData(features: part(activations, width: width, split.validation),
                                                  teacher: part(teacher, width: classes, split.validation), count: split.validation.count)
            let name = plan.graph.values[candidate.value].name
            try monitor.report(.search, base + candidateShare * 0.1, "\(label): searching \(options.searchBudget) head architectures")
            var trainingReported = false
            options.progress?("exit build: candidate \(index) '\(name)' \(candidate.shape): searching \(options.searchBudget) heads")
            let (found, _) = try ExitHeadSearch.search(inputShape: candidate.shape, classes: classes, train: trainData,
                                                       validation: validationData, backboneFLOPsAfter: candidate.flopsAfter,
                                                       budget: options.searchBudget, config: config, progress: options.progress,
                                                       checkpoint: !monitor.isActive ? nil : { training, f in
                let at = base + candidateShare * (0.1 + 0.9 * f)
                if training, !trainingReported {
                    trainingReported = true
                    try monitor.report(.train, at, "\(label): training the chosen head")
                } else {
                    try monitor.poll(at)
                }
            })
            guard let head = found else {
                options.progress?("exit build: candidate \(index) discarded (its best head is near chance)")
                continue
            }
            let headStart = MonotonicClock.nanoseconds()
            let predictValidation = predict(head, activations, width: width, rows: split.validation, pool: headPool)
            let headSecondsPerSample = Double(MonotonicClock.nanoseconds() - headStart) / 1e9 / Double(max(split.validation.count, 1))
            let predictTest = predict(head, activations, width: width, rows: split.test, pool: headPool)
            validationConfidence.append(predictValidation.confidence)
            validationPrediction.append(predictValidation.prediction)
            testConfidence.append(predictTest.confidence)
            testPrediction.append(predictTest.prediction)
            let agreement = zip(predictValidation.prediction, backboneClass[split.validation]).filter { $0 == $1 }.count
            trained.append(.init(candidateIndex: index, candidate: candidate, head: head, threshold: .infinity))
            trainedReports.append(.init(candidateIndex: index, tensor: name, shape: candidate.shape, architecture: head.architecture.description,
                                        headFLOPs: head.flops, headBytes: head.byteCount, savedFLOPs: candidate.flopsAfter, threshold: .infinity,
                                        temperature: head.temperature, active: false,
                                        validationAgreement: Double(agreement) / Double(max(split.validation.count, 1)),
                                        testHitRate: 0, testAgreement: 0))
            trainedReports[trainedReports.count - 1].headSeconds = headSecondsPerSample
            trainedReports[trainedReports.count - 1].segmentSeconds = segmentSeconds.reduce(0, +)  // cumulative, input → here
            options.progress?("exit build: candidate \(index) head \(head.architecture), validation agreement "
                              + Double(trainedReports.last!.validationAgreement).fixed(3))
        }
        guard !trained.isEmpty else { throw SelfXitError.wrongState("no candidate layer yielded a useful exit head") }
        try monitor.report(.select, 0.96, "thresholds and subset of \(trained.count) trained exits")

        // Thresholds (Eq. 3) and subset (Eq. 4) on validation predictions, no model re-run.
        let flopCosts = ExitCosts(headFLOPs: trained.map(\.head.flops), savedFLOPs: trained.map(\.candidate.flopsAfter), backboneFLOPs: backboneFLOPs)
        // Measured costs (issue 16, point 5): the tail after the last candidate is timed too, so
        // the whole backbone's time per sample is the sum of its segments.
        let tailSeconds = try timeTail(activations, from: activationValue, position: position, rows: usable, serial: serial)
        let backboneSeconds = segmentSeconds.reduce(0, +) + tailSeconds
        let timeCosts = ExitCosts.measured(head: trainedReports.map { $0.headSeconds ?? 0 },
                                           reach: trainedReports.map { $0.segmentSeconds ?? 0 }, backbone: backboneSeconds)
        let costs = options.costModel == .measured ? timeCosts : flopCosts
        let validationRecord = ExitValidationRecord(backboneClass: Array(backboneClass[split.validation]),
                                                    confidence: validationConfidence, predictedClass: validationPrediction)
        // Watched classes (issue 12): their predictions never end a run (they warn; the full
        // model confirms), so the subset is chosen on what the other classes save.
        // The options' watched classes, or those a loaded exit bundle brought (Engine+Watch).
        let watchedClasses = watchedForBuild
        let watchedSet = Set(watchedClasses.map(\.classIndex))
        let selection = try ExitPolicy.select(watchedSet.isEmpty ? validationRecord : ExitPolicy.maskingWatched(validationRecord, watched: watchedSet),
                                              costs: costs, tolerance: options.tolerance, rule: options.thresholdRule)
        let pairDelta = ExitPolicy.pairDelta(options.thresholdRule, exits: trained.count)
        for (position, exitIndex) in selection.active.enumerated() {
            trainedReports[exitIndex].validationExits = selection.result.exitCounts[position]
            trainedReports[exitIndex].validationMisses = selection.result.misses[position]
            if case .guaranteed = options.thresholdRule {
                trainedReports[exitIndex].riskUpperBound = ExitPolicy.riskUpperBound(
                    confidence: validationConfidence[exitIndex], predicted: validationPrediction[exitIndex],
                    backbone: Array(backboneClass[split.validation]), threshold: selection.thresholds[position], delta: pairDelta)
            }
        }
        var active: [ExitConfiguration.Exit] = []
        for (position, exitIndex) in selection.active.enumerated() {
            let exit = trained[exitIndex]
            active.append(.init(candidateIndex: exit.candidateIndex, candidate: exit.candidate, head: exit.head, threshold: selection.thresholds[position]))
            trainedReports[exitIndex].active = true
            trainedReports[exitIndex].threshold = selection.thresholds[position]
        }
        trained = trained.enumerated().map { offset, exit in
            .init(candidateIndex: exit.candidateIndex, candidate: exit.candidate, head: exit.head, threshold: trainedReports[offset].threshold)
        }

        // Held-out statistics on the test split, cascading as inference will.
        var testAgreement = 1.0, flopsRatio = 1.0, timeRatio = 1.0
        if !split.test.isEmpty {
            let testRecord = ExitValidationRecord(backboneClass: Array(backboneClass[split.test]), confidence: testConfidence, predictedClass: testPrediction)
            let result = ExitPolicy.cascade(testRecord, costs: flopCosts, active: selection.active, thresholds: selection.thresholds)
            let timed = ExitPolicy.cascade(testRecord, costs: timeCosts, active: selection.active, thresholds: selection.thresholds)
            timeRatio = timeCosts.backboneFLOPs > 0 ? timed.meanFLOPs / Double(timeCosts.backboneFLOPs) : 1
            for (position, exitIndex) in selection.active.enumerated() {
                let count = result.exitCounts[position]
                trainedReports[exitIndex].testHitRate = Double(count) / Double(split.test.count)
                trainedReports[exitIndex].testAgreement = count == 0 ? 1 : Double(result.hits[position]) / Double(count)
            }
            testAgreement = result.agreement
            flopsRatio = result.meanFLOPs / Double(backboneFLOPs)
        }
        let guards = watchedSet.isEmpty ? nil : watchGuards(selection.active, trained: trained, validation: validationRecord,
                                                             watched: watchedClasses, tolerance: options.tolerance, costs: costs)
        var report = ExitBuildReport(exits: trainedReports, samples: usable, trainSamples: split.train.count,
                                     validationSamples: split.validation.count, testSamples: split.test.count,
                                     testAgreement: testAgreement, testFLOPsRatio: flopsRatio,
                                     seconds: Double(MonotonicClock.nanoseconds() - start) / 1e9,
                                     tolerance: options.tolerance, thresholdRule: options.thresholdRule.name,
                                     costModel: options.costModel == .measured ? "measured" : "flops",
                                     testTimeRatio: timeRatio, backboneSeconds: backboneSeconds)
        if case .guaranteed(let delta) = options.thresholdRule {
            report.guaranteeDelta = delta
            report.guaranteedDisagreement = options.tolerance * (1 - Double(sign: .plus, exponent: -selection.active.count, significand: 1))
        }
        // Last chance to cancel: after install the build is complete and a cancel is ignored.
        try monitor.report(.select, 0.99, "putting \(active.count) exits in service")
        report.watch = guards
        install(ExitConfiguration(trained: trained, active: active, report: report,
                                  watch: guards.map { Dictionary(uniqueKeysWithValues: $0.map { ($0.candidateIndex, $0) }) },
                                  watched: watchedSet.isEmpty ? nil : watchedClasses))
        monitor.finish("done in " + report.seconds.fixed(1) + " s, active exits \(active.map(\.candidateIndex))")
        options.progress?("exit build: done in " + report.seconds.fixed(1) + " s" + ", active exits \(active.map(\.candidateIndex))")
        return report
    }

    /// Runs the backbone from `value` (complete after node `position − 1`) to `candidate`,
    /// on all `rows` samples in chunks, and returns the candidate's activations.
    /// `checkpoint` runs after each chunk with the share done; its throw stops the pass.
    private func advance(_ activations: [Float], from value: Graph.ValueID, position: Int, to candidate: Graph.ExitCandidate, rows: Int,
                         serial: Bool, checkpoint: (Double) throws -> Void) throws -> [Float] {
        let chunk = min(64, options.maxBatch)
        let inWidth = plan.graph.values[value].elementsPerSample
        let outWidth = candidate.shape.reduce(1, *)
        var result = [Float](repeating: 0, count: rows * outWidth)
        let workspace = try workspaces.take(capacity: chunk) { try plan.makeWorkspace(capacity: $0) }
        defer { workspaces.give(workspace) }
        for first in stride(from: 0, to: rows, by: chunk) {
            let count = min(chunk, rows - first)
            activations.withUnsafeBufferPointer {
                plan.pointer(value, in: workspace).update(from: $0.baseAddress! + first * inWidth, count: count * inWidth)
            }
            if serial {
                plan.runSerial(position..<(candidate.afterNode + 1), rows: count, in: workspace)
            } else {
                plan.run(position..<(candidate.afterNode + 1), rows: count, in: workspace)
            }
            result.withUnsafeMutableBufferPointer {
                ($0.baseAddress! + first * outWidth).update(from: plan.pointer(candidate.value, in: workspace), count: count * outWidth)
            }
            try checkpoint(Double(first + count) / Double(rows))
        }
        return result
    }

    /// Seconds per sample of the backbone from `value` (complete after node `position − 1`) to
    /// its output, on up to one chunk of the build's samples (what the last exit saves).
    private func timeTail(_ activations: [Float], from value: Graph.ValueID, position: Int, rows: Int, serial: Bool) throws -> Double {
        let count = min(min(64, options.maxBatch), rows)
        guard count > 0, position < plan.graph.nodes.count else { return 0 }
        let inWidth = plan.graph.values[value].elementsPerSample
        let workspace = try workspaces.take(capacity: count) { try plan.makeWorkspace(capacity: $0) }
        defer { workspaces.give(workspace) }
        activations.withUnsafeBufferPointer {
            plan.pointer(value, in: workspace).update(from: $0.baseAddress!, count: count * inWidth)
        }
        let begin = MonotonicClock.nanoseconds()
        if serial {
            plan.runSerial(position..<plan.graph.nodes.count, rows: count, in: workspace)
        } else {
            plan.run(position..<plan.graph.nodes.count, rows: count, in: workspace)
        }
        return Double(MonotonicClock.nanoseconds() - begin) / 1e9 / Double(count)
    }

    /// The head's calibrated confidence and class for samples `rows` of `activations`.
    private func predict(_ head: ExitHead, _ activations: [Float], width: Int, rows: Range<Int>, pool: ThreadPool) -> (confidence: [Float], prediction: [Int]) {
        guard !rows.isEmpty else { return ([], []) }
        let classes = teacherClasses
        var probabilities = [Float](repeating: 0, count: rows.count * classes)
        activations.withUnsafeBufferPointer { input in
            probabilities.withUnsafeMutableBufferPointer { out in
                head.probabilities(input.baseAddress! + rows.lowerBound * width, rows: rows.count, output: out.baseAddress!, pool: pool)
            }
        }
        var confidence: [Float] = [], prediction: [Int] = []
        probabilities.withUnsafeBufferPointer { all in
            for row in 0..<rows.count {
                let (best, value) = Self.argmax(UnsafeBufferPointer(rebasing: all[(row * classes)..<((row + 1) * classes)]))
                confidence.append(value)
                prediction.append(best)
            }
        }
        return (confidence, prediction)
    }
}
