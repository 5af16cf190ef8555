import Foundation

/// Saving and loading built exits.
///
/// File layout (little-endian): magic "SXEXITS\0", UInt32 format version, UInt64 model
/// fingerprint, UInt64 payload length, the payload (JSON of the exits), UInt64 FNV-1a
/// checksum of the payload. A bundle of another model, another format version, or with any
/// damaged byte is refused and the engine keeps the exits it has.
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

    private struct BundlePayload: Codable {
        struct Exit: Codable {
            var candidateIndex: Int
            var tensor: String
            var threshold: Float
            var active: Bool
            var head: ExitHead
        }
        var exits: [Exit]
        var report: ExitBuildReport
    }

    /// Writes the built exits to `url`. Throws `wrongState` when none are built.
    public func saveExits(to url: URL) throws {
        guard let configuration = exitConfiguration else { throw SelfXitError.wrongState("no exits are built: nothing to save") }
        let activeIndices = Set(configuration.active.map(\.candidateIndex))
        let payload = BundlePayload(
            exits: configuration.trained.map {
                .init(candidateIndex: $0.candidateIndex, tensor: plan.graph.values[$0.candidate.value].name,
                      threshold: $0.threshold, active: activeIndices.contains($0.candidateIndex), head: $0.head)
            },
            report: configuration.report)
        let json = try bundleEncoder.encode(payload)
        var bytes = Self.bundleMagic
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        append(Self.bundleVersion)
        append(modelFingerprint)
        append(UInt64(json.count))
        bytes.append(contentsOf: json)
        append(fnv1a64(json))
        do { try Data(bytes).write(to: url, options: .atomic) } catch {
            throw SelfXitError.io("cannot write '\(url.path)': \(error.localizedDescription)")
        }
    }

    /// Replaces the exits with those saved in `url`, after checking that the bundle is
    /// intact and was made for this model.
    public func loadExits(from url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SelfXitError.io("cannot read '\(url.path)': \(error.localizedDescription)")
        }
        let bytes = [UInt8](data)
        let header = Self.bundleMagic.count + 4 + 8 + 8
        guard bytes.count >= header + 8, Array(bytes[0..<Self.bundleMagic.count]) == Self.bundleMagic else {
            throw SelfXitError.invalidModel("'\(url.path)' is not a SelfXit exit bundle")
        }
        func read<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
            bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        }
        let version = read(UInt32.self, at: 8)
        guard version == Self.bundleVersion else {
            throw SelfXitError.invalidModel("exit bundle format \(version) is not supported (this library reads \(Self.bundleVersion))")
        }
        guard read(UInt64.self, at: 12) == modelFingerprint else {
            throw SelfXitError.invalidModel("the exit bundle was made for another model")
        }
        let length = read(UInt64.self, at: 20)
        guard length == UInt64(bytes.count - header - 8) else { throw SelfXitError.invalidModel("the exit bundle is truncated or padded") }
        let json = bytes[header..<(bytes.count - 8)]
        guard read(UInt64.self, at: bytes.count - 8) == fnv1a64(json) else {
            throw SelfXitError.invalidModel("the exit bundle is damaged (checksum mismatch)")
        }
        let payload: BundlePayload
        do { payload = try bundleDecoder.decode(BundlePayload.self, from: Data(json)) } catch {
            throw SelfXitError.invalidModel("the exit bundle's contents cannot be read: \(error)")
        }
        var trained: [ExitConfiguration.Exit] = [], active: [ExitConfiguration.Exit] = []
        for exit in payload.exits {
            guard candidates.indices.contains(exit.candidateIndex) else { throw SelfXitError.invalidModel("exit bundle names candidate \(exit.candidateIndex), the model has \(candidates.count)") }
            let candidate = candidates[exit.candidateIndex]
            guard plan.graph.values[candidate.value].name == exit.tensor, exit.head.inputShape == candidate.shape,
                  exit.head.classes == outputCount, exit.threshold.isFinite || exit.threshold == .infinity else {
                throw SelfXitError.invalidModel("exit bundle's head at candidate \(exit.candidateIndex) does not fit the model")
            }
            let built = ExitConfiguration.Exit(candidateIndex: exit.candidateIndex, candidate: candidate, head: exit.head, threshold: exit.threshold)
            trained.append(built)
            if exit.active { active.append(built) }
        }
        guard zip(trained, trained.dropFirst()).allSatisfy({ $0.candidateIndex < $1.candidateIndex }) else {
            throw SelfXitError.invalidModel("exit bundle's exits are not in depth order")
        }
        install(ExitConfiguration(trained: trained, active: active, report: payload.report))
    }
}
