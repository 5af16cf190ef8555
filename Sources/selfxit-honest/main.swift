// selfxit-honest: the experiments of issue 16 ("exits that stay honest in production").
//
//   selfxit-honest guarantee   thresholds with a (1−δ) guarantee vs the paper's point rule, over
//                              many seeded selection/unseen splits (heads trained once)
//   selfxit-honest drift       a Fashion-MNIST stream that shifts part-way (inverted contrast on
//                              a share of frames): audited serving, the live guard, a background
//                              rebuild; per-frame log, acceptance figures and an SVG
//
// Both print what they measured and write JSON (and the drift SVG) under --out.
import ArgumentParser
import Foundation
import SelfXit
import SelfXitDatasets

@main
struct Honest: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "selfxit-honest", abstract: "Issue 16 experiments.",
                                                    subcommands: [Guarantee.self, Drift.self])
}

func now() -> Double { Date().timeIntervalSince1970 }

func write(_ text: String, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try text.write(to: url, atomically: true, encoding: .utf8)
}

func json<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// An engine that has collected `frames` of `data` with exits off.
func collectingEngine(model: String, threads: Int, seed: UInt64, data: FashionMNIST, frames: Range<Int>) throws -> Engine {
    let engine = try Engine(contentsOf: URL(fileURLWithPath: model), options: EngineOptions(threads: threads, seed: seed))
    engine.setExitsEnabled(false)
    for first in stride(from: frames.lowerBound, to: frames.upperBound, by: 100) {
        let count = min(100, frames.upperBound - first)
        try engine.submit(Array(data.batch(first..<(first + count))), batch: count) { _ in }
    }
    return engine
}

struct Guarantee: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Guarantee check: fraction of builds whose unseen disagreement exceeds T.")
    @Option var model = "models/fmnist-resnet18-w16.onnx"
    @Option var threads = 2
    @Option var tolerance = 0.01
    @Option var delta = 0.05
    @Option(help: "Seeded selection/unseen splits.") var splits = 24
    @Option(help: "Frames the thresholds and subset are chosen on (per split).") var selection = 4000
    @Option(help: "Frames of the training split analysed (selection + unseen).") var frames = 20000
    @Option(help: "Test-split frames the heads are trained on.") var train = 3000
    @Option(name: .customLong("cost-model"), help: "flops or measured (for the heads' build).") var costModel = "measured"
    @Option var out = "docs/honest"

    struct Split: Codable {
        var seed: Int, rule: String, active: [Int], selectionAgreement: Double, unseenDisagreement: Double, unseenFLOPsRatio: Double, exitShare: Double
    }

    func run() throws {
        let test = try FashionMNIST(split: "t10k"), trainSplit = try FashionMNIST(split: "train")
        var start = now()
        let engine = try collectingEngine(model: model, threads: threads, seed: 1, data: test, frames: 0..<train)
        var options = ExitBuildOptions(tolerance: tolerance, searchBudget: 2, seed: 1, epochs: 10)
        options.costModel = costModel == "measured" ? .measured : .flops
        let report = try engine.updateExits(options)
        print("heads trained on \(train) test frames in \(String(format: "%.0f", now() - start)) s: \(report.exits.count) trained exits")
        // FLOPs and measured time side by side (issue 16, point 5).
        print("cost model \(report.costModel ?? "?"): held-out FLOPs ratio \(String(format: "%.3f", report.testFLOPsRatio)), "
              + "time ratio \(String(format: "%.3f", report.testTimeRatio ?? .nan)); backbone \(engine.backboneFLOPs) FLOPs, "
              + String(format: "%.1f µs", (report.backboneSeconds ?? 0) * 1e6) + " per sample")
        print("exit | active | head FLOPs | head µs/sample | FLOPs to reach | share of backbone FLOPs | segment µs to reach | share of backbone time")
        for exit in report.exits {
            let reach = engine.backboneFLOPs - exit.savedFLOPs
            print(String(format: "%4d | %@ | %10d | %8.2f | %12d | %.3f | %8.1f | %.3f", exit.candidateIndex, exit.active ? "yes" : "no ",
                         exit.headFLOPs, (exit.headSeconds ?? 0) * 1e6, reach, Double(reach) / Double(engine.backboneFLOPs),
                         (exit.segmentSeconds ?? 0) * 1e6, (exit.segmentSeconds ?? 0) / (report.backboneSeconds ?? 1)))
        }
        start = now()
        var analyses: [ExitAnalysis] = []
        for first in stride(from: 0, to: frames, by: 250) {
            let input = Array(trainSplit.batch(first..<(first + 250)))
            analyses += try input.withUnsafeBufferPointer { try engine.analyze($0, batch: 250) }
        }
        print("analysed \(frames) unseen training-split frames in \(String(format: "%.0f", now() - start)) s")
        var rows: [Split] = []
        for seed in 0..<splits {
            var generator = SeededGenerator(seed: UInt64(seed) &+ 1000)
            let order = Array(analyses.indices).shuffled(using: &generator)
            let chosen = order.prefix(selection).map { analyses[$0] }, unseen = order.dropFirst(selection).map { analyses[$0] }
            for (name, rule) in [("point", ExitThresholdRule.point), ("guaranteed", .guaranteed(delta: delta))] {
                let trial = try engine.trialExitSelection(selection: chosen, unseen: unseen, tolerance: tolerance, rule: rule)
                rows.append(Split(seed: seed, rule: name, active: trial.active, selectionAgreement: trial.selectionAgreement,
                                  unseenDisagreement: 1 - trial.unseenAgreement, unseenFLOPsRatio: trial.unseenFLOPsRatio,
                                  exitShare: trial.unseenExitShare))
            }
        }
        var summary: [String: [String: Double]] = [:]
        for name in ["point", "guaranteed"] {
            let mine = rows.filter { $0.rule == name }
            let over = mine.filter { $0.unseenDisagreement > tolerance }.count
            let mean = { (f: (Split) -> Double) in mine.map(f).reduce(0, +) / Double(mine.count) }
            summary[name] = ["splits": Double(mine.count), "exceedT": Double(over), "exceedFraction": Double(over) / Double(mine.count),
                             "meanDisagreement": mean { $0.unseenDisagreement }, "maxDisagreement": mine.map(\.unseenDisagreement).max() ?? 0,
                             "meanFLOPsSaving": 1 - mean { $0.unseenFLOPsRatio }, "meanExitShare": mean { $0.exitShare }]
            print(String(format: "%-10@ builds over T: %2d/%d (%.3f)  disagreement mean %.4f max %.4f  FLOPs saving %.3f  exit share %.3f",
                         name as NSString, over, mine.count, Double(over) / Double(mine.count), mean { $0.unseenDisagreement },
                         mine.map(\.unseenDisagreement).max() ?? 0, 1 - mean { $0.unseenFLOPsRatio }, mean { $0.exitShare }))
        }
        struct Output: Codable { var tolerance: Double, delta: Double, selection: Int, unseen: Int, summary: [String: [String: Double]], splits: [Split] }
        try write(try json(Output(tolerance: tolerance, delta: delta, selection: selection, unseen: frames - selection, summary: summary, splits: rows)),
                  to: "\(out)/guarantee.json")
        print("wrote \(out)/guarantee.json")
    }
}

/// splitmix64, for the experiment's own shuffles.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

final class Box<T>: @unchecked Sendable {
    let lock = NSLock()
    var value: T
    init(_ value: T) { self.value = value }
    func with<R>(_ body: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&value) }
}

struct Drift: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Drift stream: guard, background rebuild, disagreement over time.")
    @Option var model = "models/fmnist-resnet18-w16.onnx"
    @Option var threads = 2
    @Option var tolerance = 0.02
    @Option(name: .customLong("audit-rate")) var auditRate = 0.25
    @Option(help: "Frames before the drift.") var before = 3000
    @Option(help: "Share of frames inverted after the drift.") var share = 0.5
    @Option(help: "Frames collected after a trip before the rebuild starts.") var rebuildAfter = 2000
    @Option(help: "Frames per second the stream is paced at.") var rate = 400.0
    @Option var batch = 8
    @Option(help: "Frames after the swap before the stream ends.") var after = 3000
    @Option(name: .customLong("max-frames"), help: "Distinct stream frames (the drifted part repeats beyond them).") var maxFrames = 30000
    @Option(name: .customLong("stream-limit")) var streamLimit = 400000
    @Option(name: .customLong("hold-seconds"), help: "Seconds of the rebuild with alternating held/running phases.") var holdSeconds = 60.0
    @Option(name: .customLong("rebuild-epochs")) var rebuildEpochs = 6
    @Option(name: .customLong("rebuild-search")) var rebuildSearch = 1
    @Option(name: .customLong("build-frames")) var buildFrames = 6000
    @Option var out = "docs/honest"

    struct Frame: Codable {
        var exit: Int, agree: Bool, flops: Double, latency: Double, building: Bool, drifted: Bool
        /// During the rebuild: whether the build was held (its progress handler sleeping) and
        /// for how long the phase had lasted when the frame was submitted.
        var paused = false
        var phaseAge = 0.0
    }
    struct Event: Codable { var frame: Int, kind: String, exit: Int, message: String }

    func run() throws {
        let trainSplit = try FashionMNIST(split: "train")
        let offset = (1 - 2 * FashionMNIST.mean) / FashionMNIST.std
        // The stream: training-split frames in order; after `before`, each frame inverted with
        // probability `share` (seeded).
        var generator = SeededGenerator(seed: 7)
        let inverted = (0..<maxFrames).map { $0 >= before && generator.uniform() < share }
        func frames(_ range: Range<Int>) -> [Float] {
            var values: [Float] = []
            values.reserveCapacity(range.count * 784)
            for i in range {
                // The stream never reaches the last `buildFrames` training frames: the exits are
                // built on those (same distribution as the stream before the drift).
                let k = i % (trainSplit.count - buildFrames)
                let source = trainSplit.batch(k..<(k + 1))
                values += inverted[i] ? source.map { offset - $0 } : Array(source)
            }
            return values
        }
        // The full model's answers on the whole stream, beforehand (a separate engine).
        var start = now()
        let reference = try Engine(contentsOf: URL(fileURLWithPath: model), options: EngineOptions(threads: threads, collectionBudgetBytes: 0))
        var backbone: [Int] = []
        for first in stride(from: 0, to: maxFrames, by: 250) {
            let logits = try reference.infer(frames(first..<(first + 250)), batch: 250)
            for row in 0..<250 {
                let slice = logits[(row * 10)..<((row + 1) * 10)]
                backbone.append(slice.indices.max { slice[$0] < slice[$1] }! - row * 10)
            }
        }
        print("reference answers for \(maxFrames) frames in \(String(format: "%.0f", now() - start)) s")

        // Initial exits: built (guaranteed rule) on test frames, before the stream.
        start = now()
        let engine = try collectingEngine(model: model, threads: threads, seed: 1, data: trainSplit,
                                          frames: (trainSplit.count - buildFrames)..<trainSplit.count)
        var build = ExitBuildOptions(tolerance: tolerance, searchBudget: 2, seed: 1, trainFraction: 0.4, validationFraction: 0.4, epochs: 10)
        build.thresholdRule = .guaranteed(delta: 0.05)
        let initial = try engine.updateExits(build)
        engine.setExitsEnabled(true)
        print("initial build \(String(format: "%.0f", now() - start)) s: active \(initial.exits.filter(\.active).map(\.candidateIndex)), "
              + "test agreement \(initial.testAgreement), FLOPs ratio \(initial.testFLOPsRatio)")
        var rebuild = build
        rebuild.threads = 1
        // Latency with and without the build, interleaved in time (the machine is shared and its
        // load drifts): while a rebuild runs the stream alternates 1-second phases in which the
        // build runs or is held in its progress handler (called about ten times a second
        // between steps; holding it there holds no lock).
        let paused = Box(false)
        rebuild.onProgress = { _ in
            while paused.with({ $0 }) { usleep(10_000) }
            return .proceed
        }
        rebuild.epochs = rebuildEpochs
        rebuild.searchBudget = rebuildSearch
        let events = Box<[Event]>([]), position = Box(0)
        try engine.configureServing(ExitServingOptions(auditRate: auditRate, seed: 3, guardEnabled: true, guardDelta: 0.05,
                                                       rebuildOnGuardTrip: true, collectAfterTrip: rebuildAfter,
                                                       restartCollectionOnTrip: true, rebuildOptions: rebuild, onEvent: { event in
            let frame = position.with { $0 }
            events.with { $0.append(Event(frame: frame, kind: event.kind.rawValue, exit: event.exitIndex, message: event.message)) }
            print("frame \(frame): \(event.kind.rawValue) \(event.exitIndex) \(event.message)")
        }))
        var log: [Frame] = []
        var swappedAt: Int? = nil
        var lastAuditFLOPs = 0.0
        var buildSeen: Double? = nil
        start = now()
        var first = 0
        // Stream frame i is distinct frame k(i): beyond maxFrames the drifted part repeats.
        func k(_ i: Int) -> Int { i < maxFrames ? i : before + (i - before) % (maxFrames - before) }
        func streamFrames(_ range: Range<Int>) -> [Float] { range.flatMap { frames(k($0)..<(k($0) + 1)) } }
        while first < streamLimit {
            let count = min(batch, streamLimit - first)
            position.with { $0 = first }
            let building = engine.exitBuildRunning
            var hold = false, phaseAge = 0.0
            if building {
                if buildSeen == nil { buildSeen = now() }
                let elapsed = now() - buildSeen!
                hold = elapsed < holdSeconds && Int(elapsed) % 2 == 1
                phaseAge = elapsed - elapsed.rounded(.down)
            }
            paused.with { $0 = hold }
            let input = streamFrames(first..<(first + count))
            var rows = [Frame](repeating: Frame(exit: -1, agree: true, flops: 0, latency: 0, building: building, drifted: false), count: count)
            try engine.submit(input, batch: count) { result in
                let frame = k(first + result.sampleIndex)
                rows[result.sampleIndex] = Frame(exit: result.exitIndex, agree: result.classIndex == backbone[frame],
                                                 flops: Double(result.flops), latency: result.latency, building: building,
                                                 drifted: inverted[frame], paused: hold, phaseAge: phaseAge)
            }
            let stats = engine.servingStats()
            // Audit FLOPs since the exits were installed: spread over this batch's frames.
            let audit = stats.auditFLOPs >= lastAuditFLOPs ? stats.auditFLOPs - lastAuditFLOPs : stats.auditFLOPs
            lastAuditFLOPs = stats.auditFLOPs
            for i in rows.indices { rows[i].flops += audit / Double(count) }
            log += rows
            if swappedAt == nil, stats.buildsSucceeded > 0 { swappedAt = first + count }
            first += count
            if let swappedAt, first >= swappedAt + after { break }
            // Pace: frame `first` is due at start + first / rate.
            let due = start + Double(first) / rate
            let wait = due - now()
            if wait > 0 { usleep(UInt32(wait * 1e6)) }
        }
        let total = log.count
        print("stream: \(total) frames in \(String(format: "%.0f", now() - start)) s")
        let backboneFLOPs = Double(engine.backboneFLOPs)

        // Acceptance figures.
        let window = 500
        var worst = 0.0, worstAt = 0
        var disagreementSeries: [Double] = [], shareSeries: [Double] = []
        var misses = 0, early = 0
        for i in 0..<total {
            if !log[i].agree { misses += 1 }
            if log[i].exit >= 0 { early += 1 }
            if i >= window {
                if !log[i - window].agree { misses -= 1 }
                if log[i - window].exit >= 0 { early -= 1 }
            }
            if i >= window - 1 {
                let value = Double(misses) / Double(window)
                if value > worst { worst = value; worstAt = i }
            }
            disagreementSeries.append(Double(misses) / Double(min(i + 1, window)))
            shareSeries.append(Double(early) / Double(min(i + 1, window)))
        }
        let trips = events.value.filter { $0.kind == "guard_tripped" }
        let falseTrips = trips.filter { $0.frame < before }.count
        let firstTrip = trips.first { $0.frame >= before }.map { $0.frame - before }
        func saving(_ range: Range<Int>) -> Double {
            guard !range.isEmpty else { return .nan }
            return 1 - log[range].map(\.flops).reduce(0, +) / (Double(range.count) * backboneFLOPs)
        }
        let preSaving = saving(min(500, before)..<before)
        let postSaving = swappedAt.map { saving(min(total, $0 + 500)..<total) } ?? .nan
        func p99(_ values: [Double]) -> Double {
            guard !values.isEmpty else { return .nan }
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int(0.99 * Double(sorted.count)))]
        }
        // Same exits in service, interleaved in time: frames while the build ran against frames
        // while it was held (0.3 s into each phase, so a step that outlasts the handler's next
        // call does not count as held).
        let p99Building = p99(log.filter { $0.building && !$0.paused && $0.phaseAge >= 0.3 }.map(\.latency))
        let p99Idle = p99(log.filter { $0.building && $0.paused && $0.phaseAge >= 0.3 }.map(\.latency))
        let preDisagreement = Double(log[0..<before].filter { !$0.agree }.count) / Double(before)
        print(String(format: "max disagreement over %d frames: %.4f at frame %d (2T = %.3f) %@", window, worst, worstAt, 2 * tolerance,
                     worst <= 2 * tolerance ? "PASS" : "FAIL"))
        print("first guard trip \(firstTrip.map(String.init) ?? "none") frames after the drift " + ((firstTrip ?? .max) <= 1000 ? "PASS" : "FAIL")
              + "; \(falseTrips) trips before the drift")
        print(String(format: "FLOPs saving: pre-drift %.3f, after the rebuild %.3f (gap %.3f) %@", preSaving, postSaving, preSaving - postSaving,
                     abs(preSaving - postSaving) <= 0.10 ? "PASS" : "FAIL"))
        print(String(format: "latency p99: %.3f ms while the rebuild runs, %.3f ms while it is held (ratio %.2f) %@", p99Building * 1e3, p99Idle * 1e3,
                     p99Building / p99Idle, p99Building <= 1.5 * p99Idle ? "PASS" : "FAIL"))
        print(String(format: "pre-drift disagreement %.4f; serving stats: %@", preDisagreement, engine.servingStatsJSON()))

        struct Output: Codable {
            var tolerance: Double, auditRate: Double, before: Int, share: Double, frames: Int, rate: Double
            var maxWindowDisagreement: Double, maxWindowAt: Int, firstTripAfterDrift: Int?, swappedAt: Int?
            var preSaving: Double, postSaving: Double, p99Building: Double, p99Idle: Double, buildFrames: Int
            var events: [Event]
        }
        try write(try json(Output(tolerance: tolerance, auditRate: auditRate, before: before, share: share, frames: total, rate: rate,
                                  maxWindowDisagreement: worst, maxWindowAt: worstAt, firstTripAfterDrift: firstTrip, swappedAt: swappedAt,
                                  preSaving: preSaving, postSaving: postSaving, p99Building: p99Building, p99Idle: p99Idle,
                                  buildFrames: log.filter(\.building).count, events: events.value)), to: "\(out)/drift.json")
        try write(svg(disagreement: disagreementSeries, share: shareSeries, log: log, events: events.value, before: before,
                      tolerance: tolerance, backboneFLOPs: backboneFLOPs), to: "\(out)/drift.svg")
        print("wrote \(out)/drift.json and \(out)/drift.svg")
    }

    /// Three panels over frame index: disagreement (500-frame window) with T and 2T, exit share,
    /// FLOPs saving (500-frame window); drift start, guard trips and rebuild span marked.
    func svg(disagreement: [Double], share: [Double], log: [Frame], events: [Event], before: Int, tolerance: Double,
             backboneFLOPs: Double) -> String {
        let width = 900.0, panel = 150.0, left = 60.0, top = 30.0, gap = 40.0
        let n = max(disagreement.count, 1)
        func x(_ i: Int) -> Double { left + (width - left - 20) * Double(i) / Double(n) }
        var savingSeries: [Double] = []
        var sum = 0.0
        for i in log.indices {
            sum += log[i].flops
            if i >= 500 { sum -= log[i - 500].flops }
            savingSeries.append(1 - sum / (Double(min(i + 1, 500)) * backboneFLOPs))
        }
        var parts: [String] = []
        let height = top + 3 * (panel + gap) + 20
        parts.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">")
        parts.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>")
        parts.append("<text x=\"\(left)\" y=\"16\" font-size=\"13\">Drift stream (Fashion-MNIST, inverted contrast on \(Int(100 * self.share)) % of frames from frame \(before)); T = \(tolerance)</text>")
        let series: [(String, [Double], Double, [(Double, String)])] = [
            ("disagreement with the full model (500-frame window)", disagreement, max(4 * tolerance, disagreement.max() ?? 0), [(tolerance, "T"), (2 * tolerance, "2T")]),
            ("share answered by an exit (500-frame window)", share, 1, []),
            ("FLOPs saving incl. audits (500-frame window)", savingSeries, 1, []),
        ]
        for (k, (title, values, maxValue, lines)) in series.enumerated() {
            let y0 = top + Double(k) * (panel + gap) + 10
            func y(_ v: Double) -> Double { y0 + panel - panel * min(max(v, 0), maxValue) / maxValue }
            parts.append("<text x=\"\(left)\" y=\"\(y0 - 2)\">\(title)</text>")
            parts.append("<rect x=\"\(left)\" y=\"\(y0)\" width=\"\(width - left - 20)\" height=\"\(panel)\" fill=\"none\" stroke=\"#999\"/>")
            parts.append("<text x=\"\(left - 5)\" y=\"\(y0 + 10)\" text-anchor=\"end\">\(String(format: "%.3g", maxValue))</text>")
            parts.append("<text x=\"\(left - 5)\" y=\"\(y0 + panel)\" text-anchor=\"end\">0</text>")
            for (value, label) in lines {
                parts.append("<line x1=\"\(left)\" x2=\"\(width - 20)\" y1=\"\(y(value))\" y2=\"\(y(value))\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/>")
                parts.append("<text x=\"\(width - 18)\" y=\"\(y(value) + 4)\" fill=\"#c00\">\(label)</text>")
            }
            // Rebuild span (frames where a build ran).
            var i = 0
            while i < log.count {
                if log[i].building {
                    let s = i
                    while i < log.count && log[i].building { i += 1 }
                    parts.append("<rect x=\"\(x(s))\" y=\"\(y0)\" width=\"\(x(i) - x(s))\" height=\"\(panel)\" fill=\"#36c\" fill-opacity=\"0.12\"/>")
                } else { i += 1 }
            }
            parts.append("<line x1=\"\(x(before))\" x2=\"\(x(before))\" y1=\"\(y0)\" y2=\"\(y0 + panel)\" stroke=\"#000\" stroke-dasharray=\"2 2\"/>")
            for event in events where event.kind == "guard_tripped" {
                parts.append("<line x1=\"\(x(event.frame))\" x2=\"\(x(event.frame))\" y1=\"\(y0)\" y2=\"\(y0 + panel)\" stroke=\"#e80\"/>")
            }
            let step = max(1, values.count / 900)
            let points = stride(from: 0, to: values.count, by: step).map { String(format: "%.1f,%.1f", x($0), y(values[$0])) }.joined(separator: " ")
            parts.append("<polyline fill=\"none\" stroke=\"#222\" stroke-width=\"1.2\" points=\"\(points)\"/>")
        }
        let yLegend = top + 3 * (panel + gap) + 5
        parts.append("<text x=\"\(left)\" y=\"\(yLegend)\">dashed black: drift starts · orange: guard trips · blue band: background rebuild running · x: frame index (0 … \(n))</text>")
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }
}
