// `selfxit`: the command a user points at their own ONNX model and image folder.
//
//   selfxit inspect MODEL                         inputs, outputs, exit candidates and their FLOPs
//   selfxit run MODEL IMAGES [--exits B]          classify JPEG/PNG files: label, confidence, exit, latency
//   selfxit build MODEL FRAMES -o B               collect (exits off), build exits, save the bundle
//   selfxit report B [--model MODEL] -o R.html    self-contained HTML with the accuracy/FLOPs figures
//   selfxit bench MODEL --batch N                 latency of this engine alone, as JSON
//
// Built as .build/release/selfxit-cli; `make install` installs it as $(PREFIX)/bin/selfxit.
import ArgumentParser
import Foundation
import SelfXit

struct SelfXitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfxit",
        abstract: "Run ONNX classifiers on the CPU with SelfXit, build unsupervised early exits from your own images, and report on them.",
        discussion: """
            Typical use:
              selfxit inspect model.onnx
              selfxit build model.onnx frames/ --mean 0.286 --std 0.353 -o exits.sxb
              selfxit report exits.sxb --model model.onnx -o report.html
              selfxit run model.onnx images/ --mean 0.286 --std 0.353 --exits exits.sxb
              selfxit bench model.onnx --batch 32
            """,
        version: SelfXit.version,
        subcommands: [Inspect.self, Run.self, Build.self, Report.self, Bench.self])
}

SelfXitCommand.main()
