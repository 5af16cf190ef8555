/// Every graph output, not only the class vector (issue 13, point 3): a detector's boxes,
/// scores and labels, a model's intermediate heads, the raw logits of a teacher.
///
/// `inferOutputs` runs the full model (no early exits, nothing recorded for exit building) and
/// copies each output's rows out of the workspace before it goes back to the pool.
public struct EngineOutputInfo: Sendable, Equatable {
    /// The output's name in the ONNX graph.
    public let name: String
    /// Per-sample shape (batch excluded). For an output of a run-time-shaped tail (a detector's
    /// boxes), the shape the file declares, −1 where a dimension is known only at run time.
    public let shape: [Int]
    /// Floats per sample (the product of `shape`); 0 when a dimension is known only at run time.
    public var elementsPerSample: Int { shape.contains { $0 < 0 } ? 0 : shape.reduce(1, *) }
}

/// One graph output of one `inferOutputs` call: `values` holds batch × elementsPerSample
/// floats, sample after sample.
public struct EngineOutputValue: Sendable, Equatable {
    public let info: EngineOutputInfo
    public let batch: Int
    public let values: [Float]
}

extension Engine {
    /// The model's graph outputs, in the model's order (`outputs[0]` is the one `infer` returns).
    public var outputInfos: [EngineOutputInfo] {
        if let tail = plan.graph.tail {
            return zip(tail.outputs, tail.outputShapes).map { EngineOutputInfo(name: $0.0.name, shape: $0.1) }
        }
        return plan.graph.outputs.map { EngineOutputInfo(name: plan.graph.values[$0].name, shape: plan.graph.values[$0].shape) }
    }

    /// Runs the full model on `batch` samples (batch × inputCount floats) and returns every graph
    /// output. Throws `invalidArgument` (batch outside 1...maxBatch, non-finite input when those
    /// are refused), `shapeMismatch` (input length), `outOfMemory` (workspace).
    public func inferOutputs(_ input: UnsafeBufferPointer<Float>, batch: Int) throws -> [EngineOutputValue] {
        if plan.graph.tail != nil { return try inferTailOutputs(input, batch: batch) }
        return try runFullModel(input, batch: batch) { workspace in
            zip(plan.graph.outputs, outputInfos).map { id, info in
                EngineOutputValue(info: info, batch: batch,
                                  values: Array(UnsafeBufferPointer(start: plan.pointer(id, in: workspace), count: batch * info.elementsPerSample)))
            }
        }
    }

    public func inferOutputs(_ input: [Float], batch: Int) throws -> [EngineOutputValue] {
        try input.withUnsafeBufferPointer { try inferOutputs($0, batch: batch) }
    }
}
