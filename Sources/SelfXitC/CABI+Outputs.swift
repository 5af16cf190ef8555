import CSelfXitABI
import SelfXit

// sx_output_count, sx_output_describe, sx_infer_outputs: every graph output (issue 13).

@_cdecl("sx_output_count")
public func sx_output_count(_ engine: OpaquePointer?, _ count: UnsafeMutablePointer<Int>?) -> sx_status {
    guarded("sx_output_count") {
        try HandleRegistry.with(engine) { handle in
            guard let count else { throw CABIError.invalid("count is NULL") }
            count.pointee = handle.engine.outputInfos.count
        }
    }
}

@_cdecl("sx_output_describe")
public func sx_output_describe(_ engine: OpaquePointer?, _ index: Int, _ info: UnsafeMutablePointer<sx_output_info>?) -> sx_status {
    guarded("sx_output_describe") {
        try HandleRegistry.with(engine) { handle in
            let infos = handle.engine.outputInfos
            guard index >= 0, index < infos.count else { throw CABIError.invalid("output index \(index) is out of range (the model has \(infos.count))") }
            let output = infos[index]
            var result = sx_output_info()
            result.struct_size = UInt32(MemoryLayout<sx_output_info>.size)
            result.name = UnsafePointer(handle.outputNames[index])
            result.rank = output.shape.count
            withUnsafeMutableBytes(of: &result.shape) { raw in
                let dims = raw.bindMemory(to: Int64.self)
                for (axis, dim) in output.shape.prefix(dims.count).enumerated() { dims[axis] = Int64(dim) }
            }
            result.size = output.elementsPerSample
            try writeVersioned(result, to: info, name: "info")
        }
    }
}

@_cdecl("sx_infer_outputs")
public func sx_infer_outputs(_ engine: OpaquePointer?, _ input: UnsafePointer<Float>?, _ inputLength: Int, _ batch: Int,
                             _ numOutputs: Int, _ outputs: UnsafePointer<UnsafeMutablePointer<Float>?>?,
                             _ capacities: UnsafePointer<Int>?) -> sx_status {
    guarded("sx_infer_outputs") {
        try HandleRegistry.with(engine) { handle in
            guard let input else { throw CABIError.invalid("input is NULL") }
            guard let outputs, let capacities else { throw CABIError.invalid("outputs or capacities is NULL") }
            let e = handle.engine
            let infos = e.outputInfos
            guard numOutputs == infos.count else { throw CABIError.invalid("num_outputs is \(numOutputs); the model has \(infos.count) outputs") }
            guard batch >= 1, batch <= e.options.maxBatch else { throw CABIError.invalid("batch \(batch) is outside 1...max_batch (\(e.options.maxBatch))") }
            for (i, info) in infos.enumerated() {
                guard outputs[i] != nil else { throw CABIError.invalid("outputs[\(i)] is NULL") }
                let (needed, overflow) = batch.multipliedReportingOverflow(by: info.elementsPerSample)
                guard !overflow, capacities[i] >= needed else {
                    throw CABIError.invalid("capacities[\(i)] is \(capacities[i]); output '\(info.name)' needs batch \(batch) × \(info.elementsPerSample) floats")
                }
            }
            let (needed, overflow) = batch.multipliedReportingOverflow(by: e.inputCount)
            guard !overflow, inputLength == needed else {
                throw CABIError(status: SX_ERR_SHAPE_MISMATCH, message: "input_len is \(inputLength); batch \(batch) × input_size \(e.inputCount) needs \(overflow ? "more" : "\(needed)")")
            }
            let values = try e.inferOutputs(UnsafeBufferPointer(start: input, count: inputLength), batch: batch)
            // Outputs whose shapes the data decides (a detector's boxes) may outgrow what the
            // described size promised: checked before anything is written.
            for (i, value) in values.enumerated() where value.values.count > capacities[i] {
                throw CABIError.invalid("capacities[\(i)] is \(capacities[i]); output '\(value.info.name)' has shape \(value.info.shape) (\(value.values.count) floats) for this input: use sx_infer_outputs_shaped")
            }
            copyOut(values, to: outputs)
        }
    }
}

@_cdecl("sx_infer_outputs_shaped")
public func sx_infer_outputs_shaped(_ engine: OpaquePointer?, _ input: UnsafePointer<Float>?, _ inputLength: Int,
                                    _ numOutputs: Int, _ outputs: UnsafePointer<UnsafeMutablePointer<Float>?>?,
                                    _ capacities: UnsafePointer<Int>?, _ ranks: UnsafeMutablePointer<Int>?,
                                    _ shapes: UnsafeMutablePointer<Int64>?) -> sx_status {
    guarded("sx_infer_outputs_shaped") {
        try HandleRegistry.with(engine) { handle in
            guard let input else { throw CABIError.invalid("input is NULL") }
            guard let outputs, let capacities, let ranks, let shapes else { throw CABIError.invalid("outputs, capacities, ranks or shapes is NULL") }
            let e = handle.engine
            let infos = e.outputInfos
            guard numOutputs == infos.count else { throw CABIError.invalid("num_outputs is \(numOutputs); the model has \(infos.count) outputs") }
            for i in 0..<numOutputs where outputs[i] == nil { throw CABIError.invalid("outputs[\(i)] is NULL") }
            guard inputLength == e.inputCount else {
                throw CABIError(status: SX_ERR_SHAPE_MISMATCH, message: "input_len is \(inputLength); one input of input_size \(e.inputCount) is needed")
            }
            let values = try e.inferOutputs(UnsafeBufferPointer(start: input, count: inputLength), batch: 1)
            let rankLimit = Int(SX_MAX_RANK)
            for (i, value) in values.enumerated() {
                // The file's view: a batched model's outputs carry their batch of 1.
                let shape = e.hasRunTimeShapedTail ? value.info.shape : [1] + value.info.shape
                guard shape.count <= rankLimit else { throw CABIError.invalid("output '\(value.info.name)' has rank \(shape.count), above SX_MAX_RANK") }
                ranks[i] = shape.count
                for a in 0..<rankLimit { shapes[i * rankLimit + a] = a < shape.count ? Int64(shape[a]) : 0 }
            }
            for (i, value) in values.enumerated() where value.values.count > capacities[i] {
                throw CABIError.invalid("capacities[\(i)] is \(capacities[i]); output '\(value.info.name)' has \(value.values.count) floats for this input (shape written to shapes)")
            }
            copyOut(values, to: outputs)
        }
    }
}

/// Copies each output's floats to the caller's buffer `outputs[i]` (checked non-NULL and large
/// enough by the caller). An output may be empty (a detector that found nothing): an empty
/// array need not have a base address, so it is skipped rather than unwrapped.
private func copyOut(_ values: [EngineOutputValue], to outputs: UnsafePointer<UnsafeMutablePointer<Float>?>) {
    for (i, value) in values.enumerated() {
        guard let destination = outputs[i] else { continue }
        value.values.withUnsafeBufferPointer { if let base = $0.baseAddress { destination.update(from: base, count: $0.count) } }
    }
}
