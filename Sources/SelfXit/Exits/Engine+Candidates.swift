/// Read-only description of a loaded model for tools (`selfxit inspect`): its input and
/// output tensors and where exits may attach.
public struct ExitCandidateInfo: Sendable, Codable, Equatable {
    /// Position in depth order (the `candidateIndex` of exits, results and bundles).
    public var index: Int
    /// Name of the tensor the exit head would read.
    public var tensor: String
    /// Per-sample shape [C, H, W] of that tensor.
    public var shape: [Int]
    /// Backbone FLOPs per sample spent before the tensor is complete, and after it (what a
    /// sample leaving here saves).
    public var flopsBefore: Int
    public var flopsAfter: Int
}

extension Engine {
    /// Name of the model's input tensor and of its (first) output.
    public var inputName: String { plan.graph.values[plan.graph.input].name }
    public var outputName: String { plan.graph.values[plan.graph.outputs[0]].name }

    /// The candidate exit layers in depth order (paper §3.1).
    public var exitCandidates: [ExitCandidateInfo] {
        candidates.enumerated().map { index, candidate in
            ExitCandidateInfo(index: index, tensor: plan.graph.values[candidate.value].name, shape: candidate.shape,
                              flopsBefore: candidate.flopsBefore, flopsAfter: candidate.flopsAfter)
        }
    }
}
