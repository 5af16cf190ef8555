import FoundationEssentials
import Glibc

/// Saving and loading built exits.
///
/// File layout (little-endian): magic "SXEXITS\0", UInt32 format version, UInt64 model
/// fingerprint, UInt64 payload length, the payload (JSON of the exits), UInt64 FNV-1a
/// checksum of the payload. A bundle of another model, another format version, or with any
/// damaged byte is refused and the engine keeps the exits it has. The checksum only catches
/// accidents: anyone can edit a field and recompute it, so loading also checks every field
/// against the model before anything is built from it (`validated`).
/// Thresholds of exits out of service are +∞, which JSON cannot hold as a number.
private let bundleEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return encoder
}()

private let bundleDecoder: JSONDecoder = {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return decoder
}()

extension Engine {
    static let bundleMagic = Array("SXEXITS\0".utf8)
    static let bundleVersion: UInt32 = 1

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
        var exits: [Exit]
        var report: ExitBuildReport
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
            report: configuration.report)
        let json: Data
        do { json = try bundleEncoder.encode(payload) } catch {
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
        guard version == Self.bundleVersion else {
            throw refuse("format \(version) is not supported (this library reads \(Self.bundleVersion))")
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
        do { payload = try bundleDecoder.decode(DecodedPayload.self, from: Data(json)) } catch let error as DecodingError {
            throw refuse(Self.describe(error))
        } catch {
            throw refuse("its contents cannot be read: \(error)")
        }
        install(try validated(payload, refuse: refuse))
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
    private func validated(_ payload: DecodedPayload, refuse: (String) -> SelfXitError) throws -> ExitConfiguration {
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
        return ExitConfiguration(trained: trained, active: active, report: payload.report)
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
