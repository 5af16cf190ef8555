/// Architecture search for one exit candidate (SelfXit §3.2.1).
enum ExitHeadSearch {
    struct Trial {
        let architecture: ExitHeadArchitecture
        let validationAgreement: Double
        let flops: Int
        /// `validationAgreement − flops / backboneFLOPsAfter`: the share of samples the head could
        /// exit, minus its cost in units of the backbone compute an exit saves.
        let score: Double
    }

    /// Trials train on at most this many samples…
    static let trialSamples = 1000
    /// …for this many epochs (or `config.epochs` if fewer), batch 32, learning rate ≥ 3e-3.
    static let trialEpochs = 3
    /// Share of a search's progress given to the trials (the rest: the chosen head's full training),
    /// about their share of the time with the default budget and epochs.
    static let trialShare = 0.3

    /// The candidate list for an input `[C, H, W]`, sorted cheap → expensive by FLOPs (duplicates
    /// and architectures that do not fit removed). With `p4`/`p8` the smallest pool factors that
    /// bring the spatial size to ≤ 4 / ≤ 8:
    ///
    ///  1. gap fc                              (linear probe on pooled features)
    ///  2. gap fc128 fc
    ///  3. gap fc256 fc
    ///  4. pool p4, flatten, fc                (keeps coarse spatial layout)
    ///  5. pool p4, flatten, fc128 fc
    ///  6. pool p8, conv1×1→64, gap, fc128 fc
    ///  7. pool p8, conv3×3/2→64, gap, fc
    ///  8. pool p8, conv3×3/2→64, gap, fc128 fc
    ///  9. pool p8, conv1×1→64, conv3×3/2→128, gap, fc128 fc
    /// 10. pool p8, conv3×3→32, conv3×3/2→64, gap, fc256 fc
    static func candidates(inputShape: [Int], classes: Int) -> [ExitHeadArchitecture] {
        guard inputShape.count == 3 else { return [] }
        let side = max(inputShape[1], inputShape[2])
        func poolTo(_ target: Int) -> Int { side <= target ? 1 : (side + target - 1) / target }
        let p4 = poolTo(4), p8 = poolTo(8)
        typealias L = ExitHeadArchitecture.ConvLayer
        let list: [ExitHeadArchitecture] = [
            .init(hidden: []),
            .init(hidden: [128]),
            .init(hidden: [256]),
            .init(inputPool: p4, flatten: true, hidden: []),
            .init(inputPool: p4, flatten: true, hidden: [128]),
            .init(inputPool: p8, convs: [L(kernel: 1, stride: 1, channels: 64)], hidden: [128]),
            .init(inputPool: p8, convs: [L(kernel: 3, stride: 2, channels: 64)], hidden: []),
            .init(inputPool: p8, convs: [L(kernel: 3, stride: 2, channels: 64)], hidden: [128]),
            .init(inputPool: p8, convs: [L(kernel: 1, stride: 1, channels: 64), L(kernel: 3, stride: 2, channels: 128)], hidden: [128]),
            .init(inputPool: p8, convs: [L(kernel: 3, stride: 1, channels: 32), L(kernel: 3, stride: 2, channels: 64)], hidden: [256]),
        ]
        var seen = Set<ExitHeadArchitecture>()
        let valid = list.filter { a in
            guard seen.insert(a).inserted, let plan = try? ExitHeadPlan(a, inputShape: inputShape, classes: classes) else { return false }
            return plan.featureCount <= 16_384
        }
        return valid.enumerated().sorted { x, y in
            let fx = x.element.flops(input: inputShape, classes: classes), fy = y.element.flops(input: inputShape, classes: classes)
            return fx != fy ? fx < fy : x.offset < y.offset
        }.map(\.element)
    }

    /// Picks the candidates to try: all when `budget` allows, else the cheapest plus a seeded random
    /// subset of the rest, kept in cost order.
    static func selection(_ list: [ExitHeadArchitecture], budget: Int, seed: UInt64) -> [ExitHeadArchitecture] {
        guard budget < list.count else { return list }
        guard budget > 0 else { return [] }
        var rest = Array(1..<list.count)
        var rng = SeededRandom(seed: seed ^ 0x5E1F_C0DE)
        rng.shuffle(&rest)
        let chosen = Set([0] + rest.prefix(budget - 1))
        return list.indices.filter { chosen.contains($0) }.map { list[$0] }
    }

    /// Runs at most `budget` brief trials, scores them, retrains the best fully with `config`, and
    /// calibrates it. `head` is nil when the best trial agreement is ≤ 1.5 / classes (near chance).
    /// `checkpoint(stage, fraction)` runs after every training mini-batch with the search's share done
    /// (trials: [0, trialShare), full training: [trialShare, 1)); its throw ends the search.
    static func search(inputShape: [Int], classes: Int, train: DistillationData, validation: DistillationData,
                       backboneFLOPsAfter: Int, budget: Int, config: ExitTrainingConfig,
                       progress: ((String) -> Void)?,
                       checkpoint: ((_ training: Bool, _ fraction: Double) throws -> Void)? = nil) throws -> (head: ExitHead?, trials: [Trial]) {
        guard inputShape.count == 3, inputShape.allSatisfy({ $0 > 0 }) else {
            throw SelfXitError.invalidArgument("exit search: input shape must be [C, H, W] with positive sizes, got \(inputShape)")
        }
        guard classes >= 2 else { throw SelfXitError.invalidArgument("exit search: needs at least 2 classes, got \(classes)") }
        guard budget >= 1 else { throw SelfXitError.invalidArgument("exit search: budget must be ≥ 1, got \(budget)") }
        guard backboneFLOPsAfter > 0 else {
            throw SelfXitError.invalidArgument("exit search: backboneFLOPsAfter must be > 0, got \(backboneFLOPsAfter)")
        }
        try ExitHeadTrainer.validate(config)
        let inSize = inputShape.reduce(1, *)
        try train.validate("training", inputSize: inSize, classes: classes)
        try validation.validate("validation", inputSize: inSize, classes: classes)

        let list = candidates(inputShape: inputShape, classes: classes)
        let chosen = selection(list, budget: budget, seed: config.seed)
        let trialTrain = train.prefix(trialSamples, inputSize: inSize, classes: classes)
        var trialConfig = config
        trialConfig.epochs = min(trialEpochs, config.epochs)
        trialConfig.patience = trialConfig.epochs
        trialConfig.batchSize = min(config.batchSize, 32)
        trialConfig.learningRate = max(config.learningRate, 3e-3)

        var trials: [Trial] = []
        for (k, a) in chosen.enumerated() {
            if let checkpoint {
                try checkpoint(false, trialShare * Double(k) / Double(chosen.count))
                trialConfig.checkpoint = { f in try checkpoint(false, trialShare * (Double(k) + f) / Double(chosen.count)) }
            }
            let r = try ExitHeadTrainer.trainDetailed(a, inputShape: inputShape, classes: classes, train: trialTrain,
                                                      validation: validation, config: trialConfig)
            let flops = a.flops(input: inputShape, classes: classes)
            let score = r.validationAgreement - Double(flops) / Double(backboneFLOPsAfter)
            trials.append(Trial(architecture: a, validationAgreement: r.validationAgreement, flops: flops, score: score))
            progress?("trial \(trials.count)/\(chosen.count) \(a): agreement \(fmt(r.validationAgreement)), \(flops) FLOPs, score \(fmt(score))")
        }
        guard let best = trials.enumerated().max(by: { x, y in
            x.element.score != y.element.score ? x.element.score < y.element.score : x.offset > y.offset
        })?.element else { return (nil, trials) }
        let bestAgreement = trials.map(\.validationAgreement).max() ?? 0
        guard bestAgreement > 1.5 / Double(classes) else {
            progress?("discarded: best agreement \(fmt(bestAgreement)) ≤ 1.5/\(classes)")
            return (nil, trials)
        }
        var fullConfig = config
        if let checkpoint {
            try checkpoint(true, trialShare)
            fullConfig.checkpoint = { f in try checkpoint(true, trialShare + (1 - trialShare) * f) }
        }
        let result = try ExitHeadTrainer.trainDetailed(best.architecture, inputShape: inputShape, classes: classes,
                                                       train: train, validation: validation, config: fullConfig)
        let head = result.head
        head.temperature = ExitHeadTrainer.calibrate(head, on: validation)
        progress?("chose \(best.architecture): agreement \(fmt(result.validationAgreement)) after \(result.epochs.count) epochs, T = \(fmt(Double(head.temperature)))")
        return (head, trials)
    }

    private static func fmt(_ x: Double) -> String {
        let r = (x * 1000).rounded() / 1000
        return "\(r)"
    }
}
