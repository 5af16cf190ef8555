import ArgumentParser
import Foundation
import SelfXit

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build early exits from a folder of unlabeled frames and save them as an exit bundle.",
        discussion: """
            The first --collect frames (sorted by name) run the full model with exits off and are
            recorded; exits are built from them (no labels) and saved to -o. The frames not
            collected are held out: every trained exit is measured on them over a sweep of
            thresholds (agreement with the full model against FLOPs), which `selfxit report`
            draws; those numbers go to <bundle>.json beside the bundle. --sweep adds builds at
            more tolerances for the report's per-tolerance table (the bundle keeps --tolerance's).
            Progress goes to stderr: a bar on a terminal, plain lines otherwise.
            """)

    @Argument(help: "The ONNX model file.") var model: String
    @Argument(help: "A folder of .png/.jpg frames (sorted by name).") var frames: String
    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("Where to save the exit bundle.", valueName: "bundle.sxb"))
    var output: String
    @Option(help: "Tolerated drop in agreement with the full model, in (0, 1).") var tolerance = 0.01
    @Option(help: ArgumentHelp("More tolerances to build at for the report's table (the bundle keeps --tolerance's exits).", valueName: "t[,t...]"))
    var sweep: FloatList?
    @Option(help: "Frames to collect for the build (default: 80 % of the frames; the rest are held out for the report).")
    var collect: Int?
    @Option(help: "Seed of the sample reservoir and of the build.") var seed: UInt64 = 0
    @Option(name: .customLong("search-budget"), help: "Head architectures tried per candidate layer.") var searchBudget = 4
    @Option(help: "Training epochs of the chosen head per candidate layer.") var epochs = 30
    @Option(help: "Frames per submitted batch.") var batch = 64
    @OptionGroup var preprocess: PreprocessFlags
    @OptionGroup var engineFlags: EngineFlags

    func validate() throws {
        try requireFile(model, "model file")
        guard tolerance > 0, tolerance < 1 else { throw ValidationError("--tolerance must be in (0, 1), got \(tolerance)") }
        if let sweep, let bad = sweep.values.first(where: { !($0 > 0 && $0 < 1) }) {
            throw ValidationError("--sweep tolerances must be in (0, 1), got \(bad)")
        }
        if let collect, collect < 1 { throw ValidationError("--collect must be at least 1, got \(collect)") }
        guard searchBudget >= 1 else { throw ValidationError("--search-budget must be at least 1, got \(searchBudget)") }
        guard (1...1000).contains(epochs) else { throw ValidationError("--epochs must be in 1...1000, got \(epochs)") }
        guard (1...4096).contains(batch) else { throw ValidationError("--batch must be in 1...4096, got \(batch)") }
        guard !output.isEmpty else { throw ValidationError("-o/--output must name a file") }
    }

    func run() throws {
        let files = try imageFiles(frames)
        let collectCount = min(collect ?? max(1, files.count * 4 / 5), files.count)
        let collected = Array(files[0..<collectCount])
        let heldOut = Array(files[collectCount...])
        let progress = Progress()

        // Room to record exactly the collected frames (inputs and full-model outputs).
        let probe = try Engine(contentsOf: URL(fileURLWithPath: model), options: engineFlags.options(maxBatch: 1))
        let perSample = (probe.inputCount + probe.outputCount) * MemoryLayout<Float>.stride
        let (budget, overflow) = perSample.multipliedReportingOverflow(by: collectCount)
        guard !overflow else { throw CommandFailure("--collect \(collectCount) frames do not fit in memory (\(perSample) bytes each)") }
        let engine = try Engine(contentsOf: URL(fileURLWithPath: model),
                                options: engineFlags.options(maxBatch: batch, collectionBudgetBytes: budget, seed: seed))
        let pre = try preprocess.preprocess(channels: engine.inputShape.first ?? 1)

        // 1. Collect: the full model over the frames, exits off (every frame is recorded).
        engine.setExitsEnabled(false)
        var done = 0
        progress.phase("collecting \(collectCount) frames")
        try forEachBatch(of: collected, engine: engine, preprocess: pre, batch: batch, skipped: { index, why in
            progress.note("\(collected[index]): \(why) (skipped)")
        }) { indices, inputs in
            try engine.submit(inputs, batch: indices.count) { _ in }
            done += indices.count
            progress.update(Double(done) / Double(collectCount), "collected \(done)/\(collectCount) frames")
        }
        progress.finish("collected \(engine.collectedSampleCount) frames")

        // 2. Build at each tolerance; the last build is --tolerance's, the one saved.
        let extra = (sweep?.values.map { Double("\($0)") ?? Double($0) } ?? []).filter { abs($0 - tolerance) > 1e-12 }
        let tolerances = Array(Set(extra)).sorted() + [tolerance]
        let candidates = engine.exitCandidates
        let evaluationFiles = heldOut.isEmpty ? collected : heldOut
        var cascades: [ReportData.CascadePoint] = []
        var report: ExitBuildReport?
        var analysis = Analysis(exits: 0)
        for (round, t) in tolerances.enumerated() {
            let label = tolerances.count > 1 ? "build \(round + 1)/\(tolerances.count) (tolerance \(t))" : "build (tolerance \(t))"
            progress.phase(label)
            let options = ExitBuildOptions(tolerance: t, searchBudget: searchBudget, seed: seed, epochs: epochs,
                                           progress: { progress.buildMessage($0) })
            let built: ExitBuildReport
            do { built = try engine.updateExits(options) } catch {
                progress.finish(nil)
                throw CommandFailure("exit build at tolerance \(t) failed: \(error)")
            }
            progress.finish("\(label): done in \(String(format: "%.1f", built.seconds)) s, active exits \(built.exits.filter(\.active).map(\.candidateIndex))")
            // 3. Every trained exit on the evaluation frames (the full model runs too).
            progress.phase("measuring exits on \(evaluationFiles.count) \(heldOut.isEmpty ? "collected" : "held-out") frames")
            analysis = Analysis(exits: built.exits.count)
            var measured = 0
            try forEachBatch(of: evaluationFiles, engine: engine, preprocess: pre, batch: batch) { indices, inputs in
                let results = try inputs.withUnsafeBufferPointer { try engine.analyze($0, batch: indices.count) }
                analysis.append(results)
                measured += indices.count
                progress.update(Double(measured) / Double(evaluationFiles.count), "measured \(measured)/\(evaluationFiles.count) frames")
            }
            progress.finish(nil)
            let active = built.exits.enumerated().filter { $0.element.active }.map { e, exit in
                (exit: e, threshold: Double(exit.threshold), flopsBefore: candidates[exit.candidateIndex].flopsBefore, headFLOPs: exit.headFLOPs)
            }
            let cascade = analysis.cascade(active: active, modelFLOPs: engine.backboneFLOPs)
            cascades.append(.init(tolerance: t, activeExits: active.map { built.exits[$0.exit].candidateIndex }, thresholds: active.map(\.threshold),
                                  agreement: cascade.agreement, flopsFraction: cascade.flopsFraction, exitShares: cascade.shares,
                                  fullModelShare: cascade.fullShare, buildTestAgreement: built.testAgreement,
                                  buildTestFLOPsRatio: built.testFLOPsRatio, buildSeconds: built.seconds))
            report = built
        }
        guard let report else { throw CommandFailure("no build ran") }

        // 4. Save the bundle, then the sidecar naming its bytes.
        let bundleURL = URL(fileURLWithPath: output)
        try engine.saveExits(to: bundleURL)
        guard let bundleBytes = FileManager.default.contents(atPath: output) else { throw CommandFailure("cannot read back '\(output)'") }
        let grid = (0...50).map { Double($0) / 50 }
        let curves: [ReportData.ExitCurve] = report.exits.enumerated().map { e, exit in
            let c = candidates[exit.candidateIndex]
            func point(_ t: Double) -> ReportData.OperatingPoint {
                analysis.point(exit: e, threshold: t, flopsBefore: c.flopsBefore, headFLOPs: exit.headFLOPs, flopsAfter: c.flopsAfter, modelFLOPs: engine.backboneFLOPs)
            }
            let threshold = Double(exit.threshold)
            return .init(candidateIndex: exit.candidateIndex, tensor: exit.tensor, active: exit.active, threshold: threshold,
                         chosen: threshold.isFinite ? point(threshold) : nil, points: grid.map(point))
        }
        let data = ReportData(model: (model as NSString).lastPathComponent, modelFLOPs: engine.backboneFLOPs, bundleFNV1a: fnv1a64Hex(bundleBytes),
                              frames: files.count, collected: collectCount, evaluated: analysis.count,
                              evaluation: heldOut.isEmpty ? "collected frames" : "held-out frames", tolerance: tolerance,
                              candidates: candidates, build: report, curves: curves, tolerances: cascades.sorted { $0.tolerance < $1.tolerance })
        let sidecar = output + ".json"
        do { try makeEncoder().encode(data).write(to: URL(fileURLWithPath: sidecar)) } catch {
            throw CommandFailure("cannot write '\(sidecar)': \(error.localizedDescription)")
        }
        printBuildReport(report, data: data, cascade: cascades.last!)
        print("saved \(output) (exit bundle) and \(sidecar) (report data); next: selfxit report \(output) -o report.html")
    }

    func printBuildReport(_ report: ExitBuildReport, data: ReportData, cascade: ReportData.CascadePoint) {
        print(String(format: "exit build, tolerance %g: %d samples (train %d, validation %d, test %d), %.1f s",
                     tolerance, report.samples, report.trainSamples, report.validationSamples, report.testSamples, report.seconds))
        print("  exit  " + pad("tensor", 34) + "  " + pad("head", 20) + "  head FLOPs  threshold  val.agree  test hit  test agree  active")
        for exit in report.exits {
            print("  " + pad("\(exit.candidateIndex)", 4, left: true) + "  " + pad(String(exit.tensor.suffix(34)), 34) + "  "
                  + pad(String((exit.architecture ?? "discarded").prefix(20)), 20) + "  " + pad(megaFLOPs(exit.headFLOPs), 10, left: true) + "  "
                  + pad(exit.threshold.isFinite ? String(format: "%.4f", exit.threshold) : "inf", 9, left: true)
                  + String(format: "  %9.3f  %8.3f  %10.3f  ", exit.validationAgreement, exit.testHitRate, exit.testAgreement)
                  + (exit.active ? "yes" : "no"))
        }
        print(String(format: "  build's test split: agreement with the full model %.4f, FLOPs %.3f x the full model",
                     report.testAgreement, report.testFLOPsRatio))
        print(String(format: "  on %d %@: agreement %.4f, FLOPs %.3f x the full model, full model answers %.1f%%",
                     data.evaluated, data.evaluation, cascade.agreement, cascade.flopsFraction, 100 * cascade.fullModelShare))
    }
}

/// Build progress on stderr: a bar redrawn in place on a terminal, plain lines otherwise
/// (logs, CI). Fed the exit build's progress messages (`ExitBuildOptions.progress`), which
/// name the candidate layer and the search trial: the bar's fraction is derived from them.
final class Progress: @unchecked Sendable {
    private let terminal = isatty(STDERR_FILENO) == 1
    private let lock = NSLock()
    private var label = ""
    private var candidates = 1, candidate = 0, trial = 0, trials = 1
    private var lastPlainPercent = -1

    func phase(_ label: String) {
        lock.lock(); defer { lock.unlock() }
        self.label = label
        candidates = 1; candidate = 0; trial = 0; trials = 1; lastPlainPercent = -1
        if !terminal { write("\(label)\n") }
    }

    /// One line outside the bar (a skipped file).
    func note(_ message: String) {
        lock.lock(); defer { lock.unlock() }
        write((terminal ? "\r\u{1B}[K" : "") + "selfxit build: \(message)\n")
    }

    func update(_ fraction: Double, _ status: String) {
        lock.lock(); defer { lock.unlock() }
        draw(fraction, status, plainEvery: 10)
    }

    /// Parses one message of the exit build into a fraction of the build done.
    func buildMessage(_ message: String) {
        lock.lock(); defer { lock.unlock() }
        func number(after prefix: String, in text: Substring) -> Int? { text.hasPrefix(prefix) ? Int(text.dropFirst(prefix.count).prefix { $0.isNumber }) : nil }
        let text = Substring(message)
        if message.hasSuffix(" candidate layers"), let count = Int(message.dropLast(" candidate layers".count).split(separator: " ").last ?? "") {
            candidates = max(count, 1)
        } else if let index = number(after: "exit build: candidate ", in: text) {
            if message.contains("searching") {
                candidate = index; trial = 0; trials = 1
            } else {
                candidate = index + 1; trial = 0
            }
        } else if text.hasPrefix("trial "), let slash = text.firstIndex(of: "/") {
            trial = Int(text[text.index(text.startIndex, offsetBy: 6)..<slash]) ?? trial
            trials = Int(text[text.index(after: slash)...].prefix { $0.isNumber }) ?? trials
        } else if text.hasPrefix("chose") || text.hasPrefix("discarded") {
            trial = trials
        }
        let fraction = message.hasPrefix("exit build: done") ? 1 : (Double(candidate) + Double(trial) / Double(trials + 1)) / Double(candidates)
        if terminal {
            draw(fraction, message, plainEvery: 0)
        } else {
            write(String(format: "[%3d%%] ", Int(100 * min(fraction, 1))) + message + "\n")
        }
    }

    /// Ends the bar's line (with a closing message, if any).
    func finish(_ message: String?) {
        lock.lock(); defer { lock.unlock() }
        if terminal {
            write("\r\u{1B}[K" + (message.map { $0 + "\n" } ?? ""))
        } else if let message {
            write(message + "\n")
        }
    }

    private func draw(_ fraction: Double, _ status: String, plainEvery: Int) {
        let f = min(max(fraction, 0), 1)
        if terminal {
            let width = 28, filled = Int(f * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            write("\r\u{1B}[K\(bar) \(String(format: "%3d%%", Int(100 * f))) \(label): \(status.prefix(70))")
        } else if plainEvery > 0 {
            // Plain lines every `plainEvery` percent, not one per batch.
            let percent = Int(100 * f)
            if percent / plainEvery != lastPlainPercent / plainEvery || percent == 100 && lastPlainPercent != 100 {
                lastPlainPercent = percent
                write(String(format: "[%3d%%] ", percent) + status + "\n")
            }
        }
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
