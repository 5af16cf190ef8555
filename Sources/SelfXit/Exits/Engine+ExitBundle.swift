import FoundationEssentials
import Glibc

/// Saving and loading built exits.
///
/// File layout (little-endian): magic "SXEXITS\0", UInt32 format version, UInt64 model
/// fingerprint, UInt64 payload length, the payload (JSON of the exits), UInt64 FNV-1a
/// checksum of the payload.
///
/// Format 2 (issue 12) adds to the payload what the safety rule for watched classes needs: the
/// teacher the exits learned from (`teacher`), the watched classes of the build with their miss
/// and warning budgets and warn thresholds (`watched`), and each guarded exit's guard — safe
/// threshold (the miss-budget rule) and warn thresholds, which also name the warning exits
/// (`guards`). Format 1 bundles lacked all three: a host that saved and reloaded its exits
/// served without the miss-budget rule. They still load, with what they lack stated in the
/// report (`bundleNote`): their exits have no guards, so with watched classes (the engine's
/// options) no exit answers a frame as not watched and only the active exits warn (at their
/// tolerance thresholds, or the options' warn thresholds); one built with watched classes is
/// refused by an engine that watches none (it would serve without the rule). A bundle of another model, another format version, or with any
/// damaged byte is refused and the engine keeps the exits it has. The checksum only catches
/// accidents: anyone can edit a field and recompute it, so loading also checks every field
/// against the model before anything is built from it (`validated`).
/// Thresholds of exits out of service are +∞, which JSON cannot hold as a number.
/// A coder a call (not one shared global): saves and loads run on the host's threads at once
/// (Tests/CABI/stress.c), and a lazily initialised global coder shared by them is what
/// ThreadSanitizer flagged (`make sanitize-tsan`); a coder costs microseconds beside the file.
private func makeBundleEncoder() -> JSONEncoder {
    let encoder = JSONEncoder()
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return encoder
}

private func makeBundleDecoder() -> JSONDecoder {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return decoder
}

extension Engine {
    static let bundleMagic = Array("SXEXITS\0".utf8)
    static let bundleVersion: UInt32 = 2
    /// Formats this library reads (see the file comment for what format 1 lacks).
    static let readableBundleVersions: ClosedRange<UInt32> = 1...2

    /// The most bytes a bundle file may have (its JSON holds every head's parameters as text).
    static let maxBundleBytes = 1 << 30

    private struct BundlePayload: Encodable {
        struct Exit: Encodable {
            var candidateIndex: Int
            var tensor: String
            var threshold: Float
            var active: Bool
            var head: ExitHead
        }
        var exits: [Exit]
        var report: ExitBuildReport
        // Format 2.
        var teacher: TeacherRecord
        var watched: [Watched]
        var guards: [ExitWatchGuard]?
    }

    /// A watched class as a bundle stores it (`WatchedClass`).
    private struct Watched: Codable {
        var classIndex: Int
        var missBudget: Double
        var warnThreshold: Double?
        var warningBudget: Double?
    }

    /// What a bundle's JSON holds, decoded into plain values: nothing is built from it (no
    /// head, no plan) before every field was checked against this engine's model — a bundle is
    /// a file anyone can write, its checksum only catches accidental damage.
    private struct DecodedPayload: Decodable {
        // Real numbers are read as Double: a value beyond Float's range (1e300) then reaches
        // the checks below, which name its field, instead of failing the whole decode.
        struct Head: Decodable {
            var architecture: ExitHeadArchitecture
            var inputShape: [Int]
            var classes: Int
            var temperature: Double
            var parameters: [Double]
            var inputMean: [Double]
            var inputInvStd: [Double]
        }
        struct Exit: Decodable {
            var candidateIndex: Int
            var tensor: String
            var threshold: Double
            var active: Bool
            var head: Head
        }
        struct Guard: Decodable {
            var candidateIndex: Int
            var safeThreshold: Double
            var warnThresholds: [Double]
            var hiddenRate: [Double]
            var falseWarningRate: [Double]
            var warningRecall: [Double]
        }
        var exits: [Exit]
        var report: ExitBuildReport
        // Format 2 (absent in format 1).
        var teacher: TeacherRecord?
        var watched: [Watched]?
        var guards: [Guard]?
    }

    /// Writes the built exits to `url`. Throws `wrongState` when none are built, `io` when the
    /// file cannot be written — or when `url` is a symbolic link, a directory, a FIFO, a device
    /// or a socket: only a regular file is replaced (atomically), nothing else is touched.
    public func saveExits(to url: URL) throws {
        guard let configuration = exitConfiguration else { throw SelfXitError.wrongState("no exits are built: nothing to save") }
        let activeIndices = Set(configuration.active.map(\.candidateIndex))
        let payload = BundlePayload(
            exits: configuration.trained.map {
                .init(candidateIndex: $0.candidateIndex, tensor: plan.graph.values[$0.candidate.value].name,
                      threshold: $0.threshold, active: activeIndices.contains($0.candidateIndex), head: $0.head)
            },
            report: configuration.report,
            teacher: teacher.record(graph: plan.graph),
            // Exits without guards (loaded from a format-1 bundle) keep the options' watched
            // classes, so that a reload still refuses their "not watched" answers.
            watched: (configuration.watched ?? options.watched).map {
                Watched(classIndex: $0.classIndex, missBudget: $0.missBudget, warnThreshold: $0.warnThreshold.map { Double($0) },
                        warningBudget: $0.warningBudget)
            },
            guards: configuration.watch.map { watch in watch.values.sorted { $0.candidateIndex < $1.candidateIndex } })
        let json: Data
        do { json = try makeBundleEncoder().encode(payload) } catch {
            throw SelfXitError.internalError("cannot encode the exits: \(error)")
        }
        var bytes = Self.bundleMagic
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        append(Self.bundleVersion)
        append(modelFingerprint)
        append(UInt64(json.count))
        bytes.append(contentsOf: json)
        append(fnv1a64(json))
        try RegularFile.write(bytes, to: url.path, what: "exit bundle")
    }

    /// Replaces the exits with those saved in `url`, after checking that the bundle is
    /// intact, was made for this model, and that every field fits the model. Throws `io` when
    /// the file cannot be read (or is not a regular file, or exceeds `maxBundleBytes`),
    /// `invalidData` naming the field at fault for anything else; the engine then keeps the
    /// exits it has.
    public func loadExits(from url: URL) throws {
        let bytes = try RegularFile.read(url.path, limit: Self.maxBundleBytes, what: "exit bundle")
        func refuse(_ message: String) -> SelfXitError { .invalidData("exit bundle '\(url.path)': \(message)") }
        let header = Self.bundleMagic.count + 4 + 8 + 8
        guard bytes.count >= header + 8, Array(bytes[0..<Self.bundleMagic.count]) == Self.bundleMagic else {
            throw refuse("not a SelfXit exit bundle")
        }
        func read<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
            bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        }
        let version = read(UInt32.self, at: 8)
        guard Self.readableBundleVersions.contains(version) else {
            throw refuse("format \(version) is not supported (this library reads formats \(Self.readableBundleVersions.lowerBound)–\(Self.readableBundleVersions.upperBound))")
        }
        guard read(UInt64.self, at: 12) == modelFingerprint else {
            throw refuse("the exit bundle was made for another model")
        }
        let length = read(UInt64.self, at: 20)
        guard length == UInt64(bytes.count - header - 8) else { throw refuse("the exit bundle is truncated or padded") }
        let json = bytes[header..<(bytes.count - 8)]
        guard read(UInt64.self, at: bytes.count - 8) == fnv1a64(json) else {
            throw refuse("the exit bundle is damaged (checksum mismatch)")
        }
        let payload: DecodedPayload
        do { payload = try makeBundleDecoder().decode(DecodedPayload.self, from: Data(json)) } catch let error as DecodingError {
            throw refuse(Self.describe(error))
        } catch {
            throw refuse("its contents cannot be read: \(error)")
        }
        install(try validated(payload, version: version, refuse: refuse))
    }

    /// A decoding error as "field path: what is wrong".
    private static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            let text = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.isEmpty ? "(top level)" : String(text.drop { $0 == "." })
        }
        switch error {
        case .typeMismatch(let type, let context): return "\(path(context.codingPath)): expected \(type): \(context.debugDescription)"
        case .valueNotFound(let type, let context): return "\(path(context.codingPath)): missing \(type) value: \(context.debugDescription)"
        case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])): missing field"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)" + (context.underlyingError.map { " (\($0))" } ?? "")
        @unknown default: return "\(error)"
        }
    }

    /// Checks every field of a decoded bundle against this engine's model and builds the
    /// configuration from it. Each refusal names the field ("exits[1].head.temperature").
    private func validated(_ payload: DecodedPayload, version: UInt32, refuse: (String) -> SelfXitError) throws -> ExitConfiguration {
        // No trained head comes near these magnitudes; larger values would only make inf/NaN.
        let maxMagnitude = 1e8
        guard payload.exits.count <= candidates.count else {
            throw refuse("exits: \(payload.exits.count) exits, the model has \(candidates.count) candidate layers")
        }
        var trained: [ExitConfiguration.Exit] = [], active: [ExitConfiguration.Exit] = []
        var previous = -1
        for (i, exit) in payload.exits.enumerated() {
            let field = "exits[\(i)]"
            guard candidates.indices.contains(exit.candidateIndex) else {
                throw refuse("\(field).candidateIndex is \(exit.candidateIndex); the model has candidates 0..<\(candidates.count)")
            }
            guard exit.candidateIndex > previous else {
                throw refuse("\(field).candidateIndex \(exit.candidateIndex) is not after the previous exit's \(previous) (depth order, no repeats)")
            }
            previous = exit.candidateIndex
            let candidate = candidates[exit.candidateIndex]
            let tensor = plan.graph.values[candidate.value].name
            guard exit.tensor == tensor else {
                throw refuse("\(field).tensor is '\(exit.tensor.prefix(200))'; candidate \(exit.candidateIndex) of the model is '\(tensor)'")
            }
            // Thresholds are calibrated confidences (probabilities) or +inf (out of service).
            guard exit.threshold == .infinity || (exit.threshold >= 0 && exit.threshold <= 1.001) else {
                throw refuse("\(field).threshold is \(exit.threshold); it must be in [0, 1] or inf")
            }
            let head = exit.head
            guard head.inputShape == candidate.shape else {
                throw refuse("\(field).head.inputShape is \(head.inputShape.prefix(8)); candidate \(exit.candidateIndex) has shape \(candidate.shape)")
            }
            guard head.classes == teacherClasses else {
                throw refuse("\(field).head.classes is \(head.classes); the model's teacher has \(teacherClasses) classes")
            }
            // Calibration searches temperatures in [0.05, 20].
            guard head.temperature.isFinite, head.temperature >= 1e-3, head.temperature <= 1e3 else {
                throw refuse("\(field).head.temperature is \(head.temperature); it must be in [0.001, 1000]")
            }
            let headPlan: ExitHeadPlan
            do { headPlan = try ExitHeadPlan(head.architecture, inputShape: candidate.shape, classes: teacherClasses) } catch {
                let message = (error as? SelfXitError).map { "\($0)" } ?? "\(error)"
                throw refuse("\(field).head.architecture does not fit the model: \(message)")
            }
            guard head.parameters.count == headPlan.parameterCount else {
                throw refuse("\(field).head.parameters has \(head.parameters.count) values; architecture \(head.architecture) on \(candidate.shape) needs \(headPlan.parameterCount)")
            }
            if let bad = head.parameters.firstIndex(where: { !($0.magnitude <= maxMagnitude) }) {
                throw refuse("\(field).head.parameters[\(bad)] is \(head.parameters[bad]); values must be finite, |x| ≤ 1e8")
            }
            guard head.inputMean.count == headPlan.pooledC else {
                throw refuse("\(field).head.inputMean has \(head.inputMean.count) values; \(headPlan.pooledC) channels need as many")
            }
            if let bad = head.inputMean.firstIndex(where: { !($0.magnitude <= maxMagnitude) }) {
                throw refuse("\(field).head.inputMean[\(bad)] is \(head.inputMean[bad]); values must be finite, |x| ≤ 1e8")
            }
            guard head.inputInvStd.count == headPlan.pooledC else {
                throw refuse("\(field).head.inputInvStd has \(head.inputInvStd.count) values; \(headPlan.pooledC) channels need as many")
            }
            if let bad = head.inputInvStd.firstIndex(where: { !($0 > 0 && $0 <= maxMagnitude) }) {
                throw refuse("\(field).head.inputInvStd[\(bad)] is \(head.inputInvStd[bad]); values must be in (0, 1e8]")
            }
            // Every value was checked to lie within Float's range: the conversions are exact enough and cannot trap.
            let built: ExitHead
            do {
                built = try ExitHead(architecture: head.architecture, inputShape: candidate.shape, classes: teacherClasses,
                                     parameters: head.parameters.map { Float($0) }, inputMean: head.inputMean.map { Float($0) },
                                     inputInvStd: head.inputInvStd.map { Float($0) }, temperature: Float(head.temperature))
            } catch {
                let message = (error as? SelfXitError).map { "\($0)" } ?? "\(error)"
                throw refuse("\(field).head: \(message)")
            }
            let exitConfiguration = ExitConfiguration.Exit(candidateIndex: exit.candidateIndex, candidate: candidate, head: built,
                                                           threshold: Float(exit.threshold))
            trained.append(exitConfiguration)
            if exit.active { active.append(exitConfiguration) }
        }
        try validate(payload.report, exits: payload.exits, refuse: refuse)
        var report = payload.report
        report.bundleFormat = Int(version)
        let watch = try validatedWatch(payload, version: version, trained: trained, active: active, refuse: refuse)
        report.watch = watch.guards
        report.bundleNote = watch.note
        return ExitConfiguration(trained: trained, active: active, report: report,
                                 watch: watch.guards.map { Dictionary(uniqueKeysWithValues: $0.map { ($0.candidateIndex, $0) }) },
                                 watched: watch.watched)
    }

    /// The teacher, watched classes and guards of a bundle, checked against this engine (its
    /// model, teacher and watched classes) and the bundle's exits; with a note of what a bundle
    /// lacks. Format 1 records none of them (see the file comment).
    private func validatedWatch(_ payload: DecodedPayload, version: UInt32, trained: [ExitConfiguration.Exit],
                                active: [ExitConfiguration.Exit], refuse: (String) -> SelfXitError) throws
        -> (guards: [ExitWatchGuard]?, watched: [WatchedClass]?, note: String?) {
        let engineWatches = !options.watched.isEmpty
        if version < 2 {
            // Format 1: the report may hold the build's guards, but not which classes they are
            // for nor their budgets; nothing of it is used.
            let builtWatching = !(payload.report.watch ?? []).isEmpty
            if builtWatching && !engineWatches {
                throw refuse("this format-1 bundle was built with watched classes but does not record them, their miss budgets or "
                    + "guards: this engine watches no class, so its exits would answer \"not watched\" without the miss-budget rule. "
                    + "Create the engine with the watched classes of the build (EngineOptions.watched, sx_engine_options.watched_classes) "
                    + "or rebuild the exits and save them again (format 2 records them)")
            }
            return (nil, nil, "format-1 exit bundle: it records no teacher, watched classes, miss-budget guards or warning exits"
                + (engineWatches ? "; with this engine's watched classes no exit answers a frame as not watched (the full model does) "
                    + "and only the active exits warn, at their tolerance thresholds or the options' warn thresholds" : ""))
        }
        guard let record = payload.teacher else { throw refuse("teacher: missing field (format 2 records the teacher)") }
        let own = teacher.record(graph: plan.graph)
        guard record == own else {
            throw refuse("teacher: the exits learned from \(record.text); this engine's teacher is \(own.text)")
        }
        guard let stored = payload.watched else { throw refuse("watched: missing field (format 2 records the watched classes)") }
        guard stored.count <= teacherClasses else {
            throw refuse("watched: \(stored.count) watched classes; the teacher has \(teacherClasses) classes")
        }
        var watched: [WatchedClass] = []
        for (k, w) in stored.enumerated() {
            // Checked here so Float(...) cannot trap; the range rules are the options' own.
            if let t = w.warnThreshold, !(t.magnitude <= 1e8) {
                throw refuse("watched[\(k)].warnThreshold is \(t); it must lie in (0, 1]")
            }
            watched.append(WatchedClass(classIndex: w.classIndex, missBudget: w.missBudget, warnThreshold: w.warnThreshold.map { Float($0) },
                                        warningBudget: w.warningBudget))
        }
        do { try teacher.validate(watched) } catch let error as SelfXitError {
            if case .invalidArgument(let message) = error { throw refuse("watched: \(message)") }
            throw refuse("watched: \(error)")
        }
        if watched.isEmpty {
            guard (payload.guards ?? []).isEmpty else { throw refuse("guards: \(payload.guards!.count) guards for no watched class") }
            return (nil, nil, engineWatches
                ? "exit bundle built without watched classes: it has no miss-budget guards or warning exits; with this engine's watched "
                    + "classes no exit answers a frame as not watched (the full model does) and only the active exits warn, at their "
                    + "tolerance thresholds or the options' warn thresholds"
                : nil)
        }
        if engineWatches, watched != options.watched {
            func describe(_ list: [WatchedClass]) -> String {
                list.map { w in
                    "class \(w.classIndex) (miss budget \(w.missBudget)" + (w.warnThreshold.map { ", warn threshold \($0)" } ?? "")
                        + (w.warningBudget.map { ", warning budget \($0)" } ?? "") + ")"
                }.joined(separator: ", ")
            }
            throw refuse("watched: the exits' guards were chosen for \(describe(watched)); this engine watches \(describe(options.watched)). "
                + "Create the engine with the bundle's watched classes (or none: it then takes them from the bundle), or rebuild the exits")
        }
        guard let decoded = payload.guards else {
            // Saved from exits that had none (loaded from a format-1 bundle into an engine watching these classes).
            return (nil, watched, "exit bundle records watched classes \(watched.map(\.classIndex)) but no guards: no exit answers a frame "
                + "as not watched (the full model does) and only the active exits warn, at their tolerance thresholds or the warn thresholds")
        }
        let trainedIndices = trained.map(\.candidateIndex)
        let activeIndices = Set(active.map(\.candidateIndex))
        var guards: [ExitWatchGuard] = []
        var previous = -1
        for (i, g) in decoded.enumerated() {
            let field = "guards[\(i)]"
            guard trainedIndices.contains(g.candidateIndex) else {
                throw refuse("\(field).candidateIndex is \(g.candidateIndex); the bundle's exits are candidates \(trainedIndices)")
            }
            guard g.candidateIndex > previous else {
                throw refuse("\(field).candidateIndex \(g.candidateIndex) is not after the previous guard's \(previous) (depth order, no repeats)")
            }
            previous = g.candidateIndex
            guard g.safeThreshold == .infinity || (g.safeThreshold >= 0 && g.safeThreshold <= 1.001) else {
                throw refuse("\(field).safeThreshold is \(g.safeThreshold); it must be in [0, 1] or inf")
            }
            // An exit out of the cascade only warns: it never answers.
            guard activeIndices.contains(g.candidateIndex) || g.safeThreshold == .infinity else {
                throw refuse("\(field).safeThreshold is \(g.safeThreshold) for exit \(g.candidateIndex), which is not active; it must be inf")
            }
            for (name, values) in [("warnThresholds", g.warnThresholds), ("hiddenRate", g.hiddenRate),
                                   ("falseWarningRate", g.falseWarningRate), ("warningRecall", g.warningRecall)] {
                guard values.count == watched.count else {
                    throw refuse("\(field).\(name) has \(values.count) values for \(watched.count) watched classes")
                }
                if name == "warnThresholds" {
                    if let bad = values.firstIndex(where: { !($0 == .infinity || ($0 >= 0 && $0 <= 1.001)) }) {
                        throw refuse("\(field).warnThresholds[\(bad)] is \(values[bad]); it must be in [0, 1] or inf")
                    }
                } else if let bad = values.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
                    throw refuse("\(field).\(name)[\(bad)] is \(values[bad]); it must be in [0, 1]")
                }
            }
            guards.append(ExitWatchGuard(candidateIndex: g.candidateIndex, safeThreshold: Float(g.safeThreshold),
                                         warnThresholds: g.warnThresholds.map { Float($0) }, hiddenRate: g.hiddenRate,
                                         falseWarningRate: g.falseWarningRate, warningRecall: g.warningRecall))
        }
        // A build guards every active exit; an active exit without one would never answer "not
        // watched" (safe), but such a bundle was not written by this library.
        let guarded = Set(guards.map(\.candidateIndex))
        if let missing = active.first(where: { !guarded.contains($0.candidateIndex) }) {
            throw refuse("guards: active exit \(missing.candidateIndex) has no guard")
        }
        return (guards, watched, engineWatches ? nil : "watched classes taken from the exit bundle: \(watched.map(\.classIndex))")
    }

    /// The build report is only shown (statistics), but it too must describe these exits and
    /// hold sane numbers: hosts read it.
    private func validate(_ report: ExitBuildReport, exits: [DecodedPayload.Exit], refuse: (String) -> SelfXitError) throws {
        guard report.exits.count == exits.count else {
            throw refuse("report.exits has \(report.exits.count) entries for \(exits.count) exits")
        }
        func rate(_ value: Double, _ field: String) throws {
            guard value >= 0, value <= 1 else { throw refuse("\(field) is \(value); it must be in [0, 1]") }
        }
        func count(_ value: Int, _ field: String) throws {
            guard value >= 0 else { throw refuse("\(field) is \(value); it must not be negative") }
        }
        for (i, entry) in report.exits.enumerated() {
            let field = "report.exits[\(i)]", exit = exits[i]
            guard entry.candidateIndex == exit.candidateIndex, entry.tensor == exit.tensor else {
                throw refuse("\(field) describes candidate \(entry.candidateIndex) '\(entry.tensor.prefix(200))', exits[\(i)] is candidate \(exit.candidateIndex) '\(exit.tensor.prefix(200))'")
            }
            guard entry.shape == candidates[exit.candidateIndex].shape else {
                throw refuse("\(field).shape is \(entry.shape.prefix(8)); candidate \(exit.candidateIndex) has shape \(candidates[exit.candidateIndex].shape)")
            }
            guard (entry.architecture?.utf8.count ?? 0) <= 1024 else { throw refuse("\(field).architecture is longer than 1024 bytes") }
            try count(entry.headFLOPs, "\(field).headFLOPs")
            try count(entry.headBytes, "\(field).headBytes")
            try count(entry.savedFLOPs, "\(field).savedFLOPs")
            guard entry.threshold == .infinity || (entry.threshold >= 0 && entry.threshold <= 1.001) else {
                throw refuse("\(field).threshold is \(entry.threshold); it must be in [0, 1] or inf")
            }
            guard entry.temperature.isFinite, entry.temperature > 0 else {
                throw refuse("\(field).temperature is \(entry.temperature); it must be finite and > 0")
            }
            try rate(entry.validationAgreement, "\(field).validationAgreement")
            try rate(entry.testHitRate, "\(field).testHitRate")
            try rate(entry.testAgreement, "\(field).testAgreement")
        }
        try count(report.samples, "report.samples")
        try count(report.trainSamples, "report.trainSamples")
        try count(report.validationSamples, "report.validationSamples")
        try count(report.testSamples, "report.testSamples")
        let (partial, overflow1) = report.trainSamples.addingReportingOverflow(report.validationSamples)
        let (splits, overflow2) = partial.addingReportingOverflow(report.testSamples)
        guard !overflow1, !overflow2, splits <= report.samples else {
            throw refuse("report: train \(report.trainSamples) + validation \(report.validationSamples) + test \(report.testSamples) samples exceed the \(report.samples) collected")
        }
        try rate(report.testAgreement, "report.testAgreement")
        guard report.testFLOPsRatio.isFinite, report.testFLOPsRatio >= 0 else {
            throw refuse("report.testFLOPsRatio is \(report.testFLOPsRatio); it must be finite and ≥ 0")
        }
        guard report.seconds.isFinite, report.seconds >= 0 else {
            throw refuse("report.seconds is \(report.seconds); it must be finite and ≥ 0")
        }
    }
}
