/// Models with a run-time-shaped tail (issue 13): one image a call, outputs whose shapes the
/// data decides (a detector's boxes, scores and labels after NMS).
extension Engine {
    /// False when the model's input has no batch axis (`[3, H, W]`, one image a call, e.g.
    /// torchvision's detectors): `inputShape` is then the file's whole input shape, batch is 1.
    public var inputHasBatchAxis: Bool { !plan.graph.unbatchedInput }

    /// Whether part of the model runs with shapes computed at run time (after the planned part).
    public var hasRunTimeShapedTail: Bool { plan.graph.tail != nil }

    /// Classes the engine answers in (`ExitResult`, `sx_result.num_classes`): the teacher's, or 0
    /// for a model with a run-time-shaped tail served with the classifier teacher — it has no class
    /// vector (`submit`/`infer` are refused), and the teacher's count would be the size of the
    /// planned tensor the tail reads (4 800 box scores, say), not a number of classes.
    public var answerClasses: Int { plan.graph.tail != nil && teacher.isClassifier ? 0 : teacherClasses }

    /// Nodes of the run-time-shaped tail (0 without one) and of the planned part.
    public var tailNodeCount: Int { plan.graph.tail?.nodes.count ?? 0 }
    public var plannedNodeCount: Int { plan.graph.nodes.count }

    /// `inferOutputs` of a model with a tail: the planned part in a pooled workspace, then the
    /// tail on its values; each output with the shape computed for this image.
    func inferTailOutputs(_ input: UnsafeBufferPointer<Float>, batch: Int) throws -> [EngineOutputValue] {
        guard let tail = plan.graph.tail else { throw SelfXitError.internalError("no tail") }
        guard batch == 1 else {
            throw SelfXitError.invalidArgument("batch is \(batch); this model's outputs have shapes known only at run time, so it runs one image a call (batch 1)")
        }
        return try runFullModel(input, batch: 1) { workspace in
            let results = try tail.run(prefix: { UnsafePointer(plan.pointer($0, in: workspace)) }, pool: plan.pool)
            return zip(tail.outputs, results).map { output, value in
                EngineOutputValue(info: EngineOutputInfo(name: output.name, shape: value.shape), batch: 1, values: value.floats)
            }
        }
    }

    /// Throws `invalidArgument` when `what` would answer from the model's first planned tensor
    /// rather than its outputs: with a run-time-shaped tail that tensor is only what the tail
    /// reads (a detector's raw box encodings, say), and a class or a vector taken from it would
    /// look valid while meaning nothing. A detector teacher (which reads the tail's final
    /// detections) or `inferOutputs` are the ways to serve such a model.
    func refusePlannedAnswerOfTail(_ what: String) throws {
        guard plan.graph.tail != nil, teacher.isClassifier else { return }
        throw SelfXitError.invalidArgument("\(what): this model's outputs have shapes known only at run time (a whole detector), so it has no "
            + "class vector to answer with; read its outputs with sx_infer_outputs_shaped / inferOutputs, or serve it with a detector "
            + "teacher (teacher \"detector\")")
    }
}
