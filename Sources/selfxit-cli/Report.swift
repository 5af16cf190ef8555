import ArgumentParser
import Foundation
import SelfXit

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a self-contained HTML report of an exit bundle: accuracy vs FLOPs per exit, exit shares, thresholds.",
        discussion: """
            The figures are inline SVG (no scripts, no fonts, no network). The curves of each exit
            over thresholds and the per-tolerance table come from <bundle>.json, which
            `selfxit build` writes beside the bundle; without it the report shows each exit's
            operating point from the bundle's own build report. --model checks the bundle
            against the model (and supplies the FLOPs when the sidecar is missing).
            """)

    @Argument(help: "Exit bundle saved by `selfxit build`.") var bundle: String
    @Option(help: ArgumentHelp("The model the bundle was built for.", valueName: "model.onnx")) var model: String?
    @Option(help: ArgumentHelp("Report data written by `selfxit build` (default: <bundle>.json when it exists).", valueName: "path"))
    var data: String?
    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp("The HTML file to write.", valueName: "report.html"))
    var output = "report.html"
    @OptionGroup var engineFlags: EngineFlags

    func validate() throws {
        try requireFile(bundle, "exit bundle")
        if let model { try requireFile(model, "model file") }
        if let data { try requireFile(data, "report data") }
    }

    func run() throws {
        guard let bundleBytes = FileManager.default.contents(atPath: bundle) else { throw CommandFailure("cannot read '\(bundle)'") }
        let fingerprint = fnv1a64Hex(bundleBytes)
        var sidecar: ReportData?
        let sidecarPath = data ?? bundle + ".json"
        if let bytes = FileManager.default.contents(atPath: sidecarPath) {
            do {
                let decoded = try makeDecoder().decode(ReportData.self, from: bytes)
                if decoded.bundleFNV1a == fingerprint {
                    sidecar = decoded
                } else if data != nil {
                    throw CommandFailure("'\(sidecarPath)' describes another bundle than '\(bundle)' (rebuilt since?)")
                } else {
                    printError("selfxit report: ignoring '\(sidecarPath)': it describes another build than '\(bundle)'")
                }
            } catch let error as CommandFailure { throw error } catch {
                if data != nil { throw CommandFailure("'\(sidecarPath)' is not report data from `selfxit build`: \(error)") }
                printError("selfxit report: ignoring '\(sidecarPath)': not report data from `selfxit build`")
            }
        }
        var content: ReportContent
        if let model {
            let engine = try Engine(contentsOf: URL(fileURLWithPath: model), options: engineFlags.options(maxBatch: 1))
            do { try engine.loadExits(from: URL(fileURLWithPath: bundle)) } catch {
                throw CommandFailure("the bundle does not fit '\(model)': \(error)")
            }
            guard let build = engine.stats().lastBuild else { throw CommandFailure("'\(bundle)' holds no build report") }
            content = ReportContent(modelName: (model as NSString).lastPathComponent, modelFLOPs: engine.backboneFLOPs,
                                    candidates: engine.exitCandidates, build: build, data: sidecar)
        } else if let sidecar {
            content = ReportContent(modelName: sidecar.model, modelFLOPs: sidecar.modelFLOPs, candidates: sidecar.candidates,
                                    build: sidecar.build, data: sidecar)
        } else {
            throw CommandFailure("the bundle alone does not hold the model's FLOPs: give --model MODEL.onnx, or keep '\(bundle).json' that `selfxit build` writes beside it")
        }
        content.bundleName = (bundle as NSString).lastPathComponent
        let html = content.html()
        do { try Data(html.utf8).write(to: URL(fileURLWithPath: output)) } catch {
            throw CommandFailure("cannot write '\(output)': \(error.localizedDescription)")
        }
        print("wrote \(output) (\(html.utf8.count) bytes, \(content.figureCount) figures\(sidecar == nil ? ", from the bundle's build report only" : ""))")
    }
}

// MARK: - HTML

/// Everything a report shows, and its HTML.
struct ReportContent {
    var modelName: String
    var modelFLOPs: Int
    var candidates: [ExitCandidateInfo]
    var build: ExitBuildReport
    var data: ReportData?
    var bundleName = ""
    var figureCount = 0

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    func flopsBefore(_ candidate: Int) -> Int { candidates.indices.contains(candidate) ? candidates[candidate].flopsBefore : 0 }

    mutating func html() -> String {
        var body = ""
        let activeExits = build.exits.filter(\.active)
        body += "<h1>SelfXit early exits: \(escape(modelName))</h1>\n"
        body += "<p class=\"sub\">Bundle <code>\(escape(bundleName))</code> · full model \(String(format: "%.2f", Double(modelFLOPs) / 1e6)) MFLOPs per sample · "
        body += "\(build.samples) collected samples (train \(build.trainSamples), validation \(build.validationSamples), test \(build.testSamples)) · build \(String(format: "%.1f", build.seconds)) s"
        if let data { body += " · tolerance \(fmt(data.tolerance)) · measured on \(data.evaluated) \(escape(data.evaluation))" }
        body += "</p>\n"

        // Headline numbers.
        let main = data?.tolerances.first { abs($0.tolerance - (data?.tolerance ?? 0)) < 1e-12 }
        body += "<div class=\"cards\">"
        body += card("Agreement with the full model", pct(main?.agreement ?? build.testAgreement, 2))
        body += card("Mean FLOPs per sample", pct(main?.flopsFraction ?? build.testFLOPsRatio, 1) + " of the full model")
        body += card("Exits in service", activeExits.isEmpty ? "none" : activeExits.map { "\($0.candidateIndex)" }.joined(separator: ", "))
        body += card("Answered early", pct(main.map { 1 - $0.fullModelShare } ?? activeExits.map(\.testHitRate).reduce(0, +), 1))
        body += "</div>\n"

        body += "<h2>Agreement with the full model vs FLOPs</h2>\n"
        body += "<p class=\"note\">"
        body += data == nil ? "Without <code>&lt;bundle&gt;.json</code> (written by <code>selfxit build</code>) there is no threshold sweep: one ring per exit in service, placed by its share and agreement on the build's held-out test split in the cascade." :
            "Each exit used alone: samples whose calibrated confidence reaches the threshold leave there, the rest run the full model. "
            + "Lines sweep the threshold from 0 (left, everything leaves) to 1 (right); the ringed point is the build's threshold. Diamonds: the whole cascade at each tolerance."
        body += " Paper, Fig. 2.</p>\n"
        body += accuracyFigure()
        figureCount += 1

        body += "<div class=\"row\">\n<div>\n<h2>Exit shares</h2>\n"
        body += sharesFigure(main: main)
        figureCount += 1
        body += "</div>\n<div>\n<h2>Thresholds</h2>\n"
        body += thresholdFigure()
        figureCount += 1
        body += "</div>\n</div>\n"

        body += "<h2>Exits</h2>\n" + exitTable()
        if let data, data.tolerances.count > 1 {
            body += "<h2>Per tolerance</h2>\n" + toleranceTable(data.tolerances)
        }
        body += "<p class=\"foot\">Written by selfxit \(SelfXit.version) report. Agreement: the share of samples whose answer equals the full model's (no labels needed).</p>\n"
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>SelfXit report: \(escape(modelName))</title>
            <style>
            body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px 32px; color: #222; max-width: 1120px; }
            h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 22px 0 6px; }
            .sub, .note, .foot { color: #555; font-size: 13px; } .foot { margin-top: 24px; }
            .cards { display: flex; gap: 12px; margin: 14px 0; flex-wrap: wrap; }
            .card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 180px; }
            .card .k { font-size: 12px; color: #666; } .card .v { font-size: 20px; font-weight: 600; }
            .row { display: flex; gap: 28px; flex-wrap: wrap; }
            table { border-collapse: collapse; font-size: 13px; } th, td { border-bottom: 1px solid #e3e3e3; padding: 4px 10px; text-align: right; }
            th { background: #f4f4f4; } td.l, th.l { text-align: left; } td { white-space: nowrap; } tr.off td { color: #999; }
            svg text { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
            </style></head>
            <body>
            \(body)</body></html>

            """
    }

    // MARK: Figures

    /// Paper Fig. 2 style: per exit, agreement vs FLOPs over thresholds; cascade points per tolerance.
    func accuracyFigure() -> String {
        var series: [Chart.Series] = []
        for (i, exit) in build.exits.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let name = "exit \(exit.candidateIndex)" + (exit.active ? "" : " (not in service)")
            if let curve = data?.curves.first(where: { $0.candidateIndex == exit.candidateIndex }) {
                let points = curve.points.sorted { $0.flopsFraction < $1.flopsFraction }
                series.append(.init(name: name, color: color, points: points.map {
                    .init(x: 100 * $0.flopsFraction, y: 100 * $0.agreement,
                          tip: "exit \(exit.candidateIndex), threshold \(fmt($0.threshold)): hit rate \(pct($0.hitRate, 1)), agreement \(pct($0.agreement, 2)), FLOPs \(pct($0.flopsFraction, 1))")
                }, line: true, marker: .dot, dashed: !exit.active))
                if let chosen = curve.chosen {
                    series.append(.init(name: nil, color: color, points: [.init(x: 100 * chosen.flopsFraction, y: 100 * chosen.agreement,
                                                                                  tip: "exit \(exit.candidateIndex) at its threshold \(fmt(chosen.threshold)): hit rate \(pct(chosen.hitRate, 1)), agreement \(pct(chosen.agreement, 2))")],
                                        line: false, marker: .ring, dashed: false))
                }
            } else if exit.active {
                // The bundle's own numbers: held-out hit rate and agreement of the exit in the cascade.
                let before = flopsBefore(exit.candidateIndex)
                let flops = (Double(before + exit.headFLOPs) + (1 - exit.testHitRate) * Double(exit.savedFLOPs)) / Double(max(modelFLOPs, 1))
                let agreement = 1 - exit.testHitRate * (1 - exit.testAgreement)
                series.append(.init(name: name, color: color, points: [.init(x: 100 * flops, y: 100 * agreement,
                                                                             tip: "exit \(exit.candidateIndex): hit rate \(pct(exit.testHitRate, 1)), agreement on its samples \(pct(exit.testAgreement, 2))")],
                                    line: false, marker: .ring, dashed: false))
            }
        }
        var cascades: [(Double, Double, String)] = []
        // Tolerances giving the same cascade share one diamond and one label.
        for point in data?.tolerances ?? [] {
            let x = 100 * point.flopsFraction, y = 100 * point.agreement
            if let same = cascades.firstIndex(where: { abs($0.0 - x) < 0.05 && abs($0.1 - y) < 0.05 }) {
                cascades[same].2 += ", \(fmt(point.tolerance))"
            } else {
                cascades.append((x, y, "T = \(fmt(point.tolerance))"))
            }
        }
        if cascades.isEmpty { cascades = [(100 * build.testFLOPsRatio, 100 * build.testAgreement, "cascade")] }
        series.append(.init(name: data == nil ? "cascade" : "cascade (per tolerance)", color: "#111", points: cascades.map {
            .init(x: $0.0, y: $0.1, tip: "cascade, \($0.2): agreement \(String(format: "%.2f", $0.1)) %, FLOPs \(String(format: "%.1f", $0.0)) %", label: $0.2)
        }, line: false, marker: .diamond, dashed: false))
        series.append(.init(name: "full model", color: "#111", points: [.init(x: 100, y: 100, tip: "full model: 100 % FLOPs, agreement 100 %")],
                            line: false, marker: .square, dashed: false))
        let ys = series.flatMap { $0.points.map(\.y) }
        let low = min(ys.min() ?? 90, 99)
        var chart = Chart(width: 980, height: 500, xLabel: "Mean FLOPs per sample (% of the full model)",
                          yLabel: "Agreement with the full model (%)", xRange: 0...max(105, (series.flatMap { $0.points.map(\.x) }.max() ?? 100) + 2),
                          yRange: Swift.max(0, low - 1)...100.5, series: series)
        chart.legendWidth = 220
        return chart.svg(id: "fig-accuracy-flops")
    }

    /// Share of samples answered by each exit in service and by the full model.
    func sharesFigure(main: ReportData.CascadePoint?) -> String {
        var bars: [(String, Double, String)] = []
        let active = build.exits.enumerated().filter { $0.element.active }
        if let main {
            for (position, candidate) in main.activeExits.enumerated() {
                let i = build.exits.firstIndex { $0.candidateIndex == candidate } ?? 0
                bars.append(("exit \(candidate)", main.exitShares[position], Self.palette[i % Self.palette.count]))
            }
            bars.append(("full model", main.fullModelShare, "#555"))
        } else {
            for (i, exit) in active { bars.append(("exit \(exit.candidateIndex)", exit.testHitRate, Self.palette[i % Self.palette.count])) }
            bars.append(("full model", max(0, 1 - active.map(\.element.testHitRate).reduce(0, +)), "#555"))
        }
        return BarChart(width: 470, height: 300, yLabel: "Share of samples (%)", bars: bars.map { ($0.0, 100 * $0.1, $0.2) }, yMax: 100)
            .svg(id: "fig-exit-shares")
    }

    /// The calibrated-confidence threshold of each trained exit (out of service: none).
    func thresholdFigure() -> String {
        let bars = build.exits.enumerated().map { i, exit in
            ("exit \(exit.candidateIndex)", exit.threshold.isFinite ? Double(exit.threshold) : 0,
             exit.threshold.isFinite ? Self.palette[i % Self.palette.count] : "#ccc")
        }
        return BarChart(width: 470, height: 300, yLabel: "Confidence threshold", bars: bars, yMax: 1, valueFormat: "%.3f",
                        emptyLabel: build.exits.map { $0.threshold.isFinite ? nil : "off" }).svg(id: "fig-thresholds")
    }

    func exitTable() -> String {
        var rows = "<table><tr><th>exit</th><th class=\"l\">tensor</th><th>shape</th><th class=\"l\">head</th><th>FLOPs before</th><th>head FLOPs</th>"
        rows += "<th>threshold</th><th>temperature</th><th>val. agreement</th><th>test hit rate</th><th>test agreement</th><th>in service</th></tr>\n"
        for exit in build.exits {
            rows += "<tr\(exit.active ? "" : " class=\"off\"")><td>\(exit.candidateIndex)</td><td class=\"l\">\(escape(exit.tensor))</td><td>\(exit.shape.map(String.init).joined(separator: "×"))</td>"
            rows += "<td class=\"l\">\(escape(exit.architecture ?? "discarded"))</td><td>\(pct(Double(flopsBefore(exit.candidateIndex)) / Double(max(modelFLOPs, 1)), 1))</td>"
            rows += "<td>\(String(format: "%.3f M", Double(exit.headFLOPs) / 1e6))</td><td>\(exit.threshold.isFinite ? String(format: "%.4f", exit.threshold) : "—")</td>"
            rows += "<td>\(String(format: "%.3f", exit.temperature))</td><td>\(pct(exit.validationAgreement, 2))</td><td>\(pct(exit.testHitRate, 1))</td>"
            rows += "<td>\(pct(exit.testAgreement, 2))</td><td>\(exit.active ? "yes" : "no")</td></tr>\n"
        }
        return rows + "</table>\n"
    }

    func toleranceTable(_ points: [ReportData.CascadePoint]) -> String {
        var rows = "<table><tr><th>tolerance</th><th class=\"l\">exits in service</th><th class=\"l\">thresholds</th><th>agreement</th><th>FLOPs</th>"
        rows += "<th>answered early</th><th>build test agreement</th><th>build test FLOPs</th><th>build s</th></tr>\n"
        for p in points {
            rows += "<tr><td>\(fmt(p.tolerance))</td><td class=\"l\">\(p.activeExits.isEmpty ? "none" : p.activeExits.map(String.init).joined(separator: ", "))</td>"
            rows += "<td class=\"l\">\(p.thresholds.map { String(format: "%.3f", $0) }.joined(separator: ", "))</td><td>\(pct(p.agreement, 2))</td>"
            rows += "<td>\(pct(p.flopsFraction, 1))</td><td>\(pct(1 - p.fullModelShare, 1))</td><td>\(pct(p.buildTestAgreement, 2))</td>"
            rows += "<td>\(pct(p.buildTestFLOPsRatio, 1))</td><td>\(String(format: "%.1f", p.buildSeconds))</td></tr>\n"
        }
        return rows + "</table>\n"
    }

    func card(_ key: String, _ value: String) -> String { "<div class=\"card\"><div class=\"k\">\(key)</div><div class=\"v\">\(escape(value))</div></div>" }
}

func pct(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f %%", 100 * value) }
func fmt(_ value: Double) -> String { String(format: "%g", value) }

func escape(_ text: String) -> String {
    var out = ""
    for c in text {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}

// MARK: - SVG charts

/// "Nice" tick values (1, 2, 5 × 10^k steps) covering `range` with about `count` ticks.
func niceTicks(_ range: ClosedRange<Double>, count: Int = 6) -> [Double] {
    let span = max(range.upperBound - range.lowerBound, 1e-9)
    let raw = span / Double(max(count, 1))
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    var ticks: [Double] = []
    var value = ceil(range.lowerBound / step) * step
    while value <= range.upperBound + step * 1e-9 {
        ticks.append(value)
        value += step
    }
    return ticks
}

func num(_ value: Double) -> String { String(format: "%.1f", value) }

/// A scatter/line chart with axes, grid, labels and a legend on the right.
struct Chart {
    enum Marker { case dot, ring, diamond, square }
    struct Point { var x: Double, y: Double, tip: String, label: String? = nil }
    struct Series {
        var name: String?, color: String, points: [Point], line: Bool, marker: Marker, dashed: Bool
        // Spelled out: the implicit memberwise init of this struct fails to compile in the
        // testable (`swift test -c release`) build ("return from initializer without
        // initializing all stored properties", Swift 6.3.1).
        init(name: String?, color: String, points: [Point], line: Bool, marker: Marker, dashed: Bool) {
            self.name = name; self.color = color; self.points = points
            self.line = line; self.marker = marker; self.dashed = dashed
        }
    }

    var width: Double, height: Double
    var xLabel: String, yLabel: String
    var xRange: ClosedRange<Double>, yRange: ClosedRange<Double>
    var series: [Series]
    var legendWidth = 180.0

    func svg(id: String) -> String {
        let left = 66.0, top = 16.0, bottom = 54.0
        let plotW = width - left - legendWidth - 20, plotH = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - xRange.lowerBound) / (xRange.upperBound - xRange.lowerBound) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - yRange.lowerBound) / (yRange.upperBound - yRange.lowerBound)) * plotH }
        var s = "<svg id=\"\(id)\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\">\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"#fff\"/>\n"
        // Grid and ticks.
        for t in niceTicks(xRange, count: 10) {
            s += "<line x1=\"\(num(px(t)))\" y1=\"\(num(top))\" x2=\"\(num(px(t)))\" y2=\"\(num(top + plotH))\" stroke=\"#e6e6e6\"/>"
            s += "<text x=\"\(num(px(t)))\" y=\"\(num(top + plotH + 17))\" font-size=\"12\" text-anchor=\"middle\" fill=\"#333\">\(fmt(t))</text>\n"
        }
        for t in niceTicks(yRange, count: 8) {
            s += "<line x1=\"\(num(left))\" y1=\"\(num(py(t)))\" x2=\"\(num(left + plotW))\" y2=\"\(num(py(t)))\" stroke=\"#e6e6e6\"/>"
            s += "<text x=\"\(num(left - 7))\" y=\"\(num(py(t) + 4))\" font-size=\"12\" text-anchor=\"end\" fill=\"#333\">\(fmt(t))</text>\n"
        }
        s += "<rect x=\"\(num(left))\" y=\"\(num(top))\" width=\"\(num(plotW))\" height=\"\(num(plotH))\" fill=\"none\" stroke=\"#888\"/>\n"
        s += "<text x=\"\(num(left + plotW / 2))\" y=\"\(num(height - 12))\" font-size=\"13\" text-anchor=\"middle\" fill=\"#222\">\(escape(xLabel))</text>\n"
        s += "<text transform=\"translate(16 \(num(top + plotH / 2))) rotate(-90)\" font-size=\"13\" text-anchor=\"middle\" fill=\"#222\">\(escape(yLabel))</text>\n"
        // Data, clipped to the plot.
        s += "<clipPath id=\"\(id)-clip\"><rect x=\"\(num(left))\" y=\"\(num(top))\" width=\"\(num(plotW))\" height=\"\(num(plotH))\"/></clipPath>\n"
        s += "<g clip-path=\"url(#\(id)-clip)\">\n"
        for (index, item) in series.enumerated() {
            let visible = item.points.filter { yRange.contains($0.y) }
            if item.line, visible.count > 1 {
                let path = item.points.map { "\(num(px($0.x))),\(num(py($0.y)))" }.joined(separator: " ")
                s += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(item.color)\" stroke-width=\"2\"\(item.dashed ? " stroke-dasharray=\"6 4\"" : "") stroke-linejoin=\"round\"/>\n"
            }
            for p in item.points {
                s += marker(item.marker, x: px(p.x), y: py(p.y), color: item.color, series: index, data: p)
                if let label = p.label {
                    s += "<text x=\"\(num(px(p.x) + 8))\" y=\"\(num(py(p.y) - 7))\" font-size=\"12\" font-weight=\"600\" fill=\"#111\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">\(escape(label))</text>\n"
                }
            }
        }
        s += "</g>\n"
        // Legend.
        var y = top + 8
        let lx = left + plotW + 18
        for item in series {
            guard let name = item.name else { continue }
            if item.line {
                s += "<line x1=\"\(num(lx))\" y1=\"\(num(y))\" x2=\"\(num(lx + 26))\" y2=\"\(num(y))\" stroke=\"\(item.color)\" stroke-width=\"2\"\(item.dashed ? " stroke-dasharray=\"6 4\"" : "")/>"
            }
            s += marker(item.marker, x: lx + 13, y: y, color: item.color, series: -1, data: nil)
            s += "<text x=\"\(num(lx + 34))\" y=\"\(num(y + 4))\" font-size=\"12\" fill=\"#222\">\(escape(name))</text>\n"
            y += 20
        }
        if series.contains(where: { $0.marker == .ring && $0.name == nil }) {
            s += marker(.ring, x: lx + 13, y: y, color: "#444", series: -1, data: nil)
            s += "<text x=\"\(num(lx + 34))\" y=\"\(num(y + 4))\" font-size=\"12\" fill=\"#222\">build's threshold</text>\n"
        }
        return s + "</svg>\n"
    }

    /// One marker; data points (series ≥ 0) carry class "pt", their values and a tooltip.
    func marker(_ kind: Marker, x: Double, y: Double, color: String, series: Int, data: Point?) -> String {
        let attributes = data.map { " class=\"pt\" data-series=\"\(series)\" data-x=\"\(String(format: "%.3f", $0.x))\" data-y=\"\(String(format: "%.3f", $0.y))\"" } ?? ""
        let tip = data.map { "<title>\(escape($0.tip))</title>" } ?? ""
        switch kind {
        case .dot:
            return "<circle\(attributes) cx=\"\(num(x))\" cy=\"\(num(y))\" r=\"2.6\" fill=\"\(color)\">\(tip)</circle>\n"
        case .ring:
            return "<circle\(attributes) cx=\"\(num(x))\" cy=\"\(num(y))\" r=\"6.5\" fill=\"#fff\" fill-opacity=\"0.6\" stroke=\"\(color)\" stroke-width=\"2.5\">\(tip)</circle>\n"
        case .diamond:
            let d = 7.0
            return "<path\(attributes) d=\"M\(num(x)) \(num(y - d)) L\(num(x + d)) \(num(y)) L\(num(x)) \(num(y + d)) L\(num(x - d)) \(num(y)) Z\" fill=\"\(color)\">\(tip)</path>\n"
        case .square:
            return "<rect\(attributes) x=\"\(num(x - 5))\" y=\"\(num(y - 5))\" width=\"10\" height=\"10\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\">\(tip)</rect>\n"
        }
    }
}

/// Vertical bars with their values written above them.
struct BarChart {
    var width: Double, height: Double
    var yLabel: String
    var bars: [(String, Double, String)]
    var yMax: Double
    var valueFormat = "%.1f"
    /// Text shown instead of a value for bars that have none ("off").
    var emptyLabel: [String?] = []

    func svg(id: String) -> String {
        let left = 60.0, top = 16.0, bottom = 42.0, right = 12.0
        let plotW = width - left - right, plotH = height - top - bottom
        func py(_ y: Double) -> Double { top + (1 - y / yMax) * plotH }
        var s = "<svg id=\"\(id)\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\">\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"#fff\"/>\n"
        for t in niceTicks(0...yMax, count: 5) {
            s += "<line x1=\"\(num(left))\" y1=\"\(num(py(t)))\" x2=\"\(num(left + plotW))\" y2=\"\(num(py(t)))\" stroke=\"#e6e6e6\"/>"
            s += "<text x=\"\(num(left - 7))\" y=\"\(num(py(t) + 4))\" font-size=\"12\" text-anchor=\"end\" fill=\"#333\">\(fmt(t))</text>\n"
        }
        s += "<text transform=\"translate(16 \(num(top + plotH / 2))) rotate(-90)\" font-size=\"13\" text-anchor=\"middle\" fill=\"#222\">\(escape(yLabel))</text>\n"
        let slot = plotW / Double(max(bars.count, 1)), barW = min(70, slot * 0.6)
        for (i, bar) in bars.enumerated() {
            let cx = left + slot * (Double(i) + 0.5)
            let value = min(max(bar.1, 0), yMax)
            s += "<rect class=\"pt\" data-x=\"\(escape(bar.0))\" data-y=\"\(String(format: "%.4f", bar.1))\" x=\"\(num(cx - barW / 2))\" y=\"\(num(py(value)))\" width=\"\(num(barW))\" height=\"\(num(py(0) - py(value)))\" fill=\"\(bar.2)\"><title>\(escape(bar.0)): \(String(format: valueFormat, bar.1))</title></rect>\n"
            let text = (i < emptyLabel.count ? emptyLabel[i] : nil) ?? String(format: valueFormat, bar.1)
            s += "<text x=\"\(num(cx))\" y=\"\(num(py(value) - 5))\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222\">\(text)</text>\n"
            s += "<text x=\"\(num(cx))\" y=\"\(num(top + plotH + 17))\" font-size=\"12\" text-anchor=\"middle\" fill=\"#333\">\(escape(bar.0))</text>\n"
        }
        s += "<line x1=\"\(num(left))\" y1=\"\(num(py(0)))\" x2=\"\(num(left + plotW))\" y2=\"\(num(py(0)))\" stroke=\"#888\"/>\n"
        return s + "</svg>\n"
    }
}
