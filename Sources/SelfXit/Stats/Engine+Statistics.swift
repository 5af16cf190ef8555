import FoundationEssentials
import Glibc

/// Public view of an engine's running statistics and its last exit build.
public struct EngineStats: Sendable, Codable {
    public var samples: Int
    /// Samples answered by each exit candidate (index = exit index).
    public var exitCounts: [Int]
    public var backboneCount: Int
    public var meanFLOPs: Double
    public var backboneFLOPs: Double
    /// Seconds from submission to callback over the recent samples.
    public var latencyP50: Double
    public var latencyP95: Double
    public var latencyP99: Double
    /// Samples recorded for the next exit build.
    public var collectedSamples: Int
    public var exitsEnabled: Bool
    /// Candidate indices of the exits in service.
    public var activeExits: [Int]
    /// The report of the build that made the current exits (nil before any).
    public var lastBuild: ExitBuildReport?
}

/// camelCase → snake_case, keeping "FLOPs" one word ("meanFLOPs" → "mean_flops").
struct SnakeCaseKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ camel: String) {
        var result = ""
        for character in camel.replacing("FLOPs", with: "Flops") {
            if character.isUppercase {
                if !result.isEmpty { result += "_" }
                result += character.lowercased()
            } else {
                result.append(character)
            }
        }
        stringValue = result
    }
    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { nil }
}

extension Engine {
    public func stats() -> EngineStats {
        let snapshot = statistics.snapshot()
        let configuration = exitConfiguration
        return EngineStats(samples: snapshot.samples, exitCounts: snapshot.exitCounts, backboneCount: snapshot.backboneCount,
                           meanFLOPs: snapshot.meanFLOPs, backboneFLOPs: Double(backboneFLOPs),
                           latencyP50: snapshot.latencyP50, latencyP95: snapshot.latencyP95, latencyP99: snapshot.latencyP99,
                           collectedSamples: collector.count, exitsEnabled: exitsEnabled,
                           activeExits: configuration?.active.map(\.candidateIndex) ?? [], lastBuild: configuration?.report)
    }

    /// `stats()` as a JSON object (snake_case keys).
    public func statsJSON() -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .custom { path in SnakeCaseKey(path.last?.stringValue ?? "") }
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let data = try? encoder.encode(stats()) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    public func resetStats() { statistics.reset() }

    /// Number of exit candidates the graph offers, and of exits built / in service.
    public var candidateCount: Int { candidates.count }
    public var trainedExitCount: Int { exitConfiguration?.trained.count ?? 0 }
    public var activeExitCount: Int { exitConfiguration?.active.count ?? 0 }
    public var collectedSampleCount: Int { collector.count }
}
