import CSelfXitABI
import SelfXit

// sx_submit, sx_submit_async, sx_wait.

/// Checks a batch's pointers and sizes against the engine before anything is read.
private func checkBatch(_ handle: EngineHandle, _ input: UnsafePointer<Float>?, _ inputLength: Int, _ batch: Int,
                        _ callback: sx_result_fn?) throws -> (UnsafeBufferPointer<Float>, sx_result_fn) {
    guard let input else { throw CABIError.invalid("input is NULL") }
    guard let callback else { throw CABIError.invalid("callback is NULL") }
    let engine = handle.engine
    guard batch >= 1 else { throw CABIError.invalid("batch is 0") }
    guard batch <= engine.options.maxBatch else { throw CABIError.invalid("batch \(batch) exceeds max_batch \(engine.options.maxBatch)") }
    let (needed, overflow) = batch.multipliedReportingOverflow(by: engine.inputCount)
    guard !overflow, inputLength == needed else {
        throw CABIError(status: SX_ERR_SHAPE_MISMATCH, message: "input_len is \(inputLength); batch \(batch) × input_size \(engine.inputCount) needs \(overflow ? "more" : "\(needed)")")
    }
    return (UnsafeBufferPointer(start: input, count: inputLength), callback)
}

@_cdecl("sx_submit")
public func sx_submit(_ engine: OpaquePointer?, _ input: UnsafePointer<Float>?, _ inputLength: Int, _ batch: Int,
                      _ callback: sx_result_fn?, _ userData: UnsafeMutableRawPointer?) -> sx_status {
    guarded("sx_submit") {
        try HandleRegistry.with(engine) { handle in
            let (buffer, function) = try checkBatch(handle, input, inputLength, batch, callback)
            try handle.deliver(input: buffer, batch: batch, ticket: 0, callback: function, userData: userData)
        }
    }
}

@_cdecl("sx_submit_async")
public func sx_submit_async(_ engine: OpaquePointer?, _ input: UnsafePointer<Float>?, _ inputLength: Int, _ batch: Int,
                            _ callback: sx_result_fn?, _ userData: UnsafeMutableRawPointer?,
                            _ ticket: UnsafeMutablePointer<UInt64>?) -> sx_status {
    guarded("sx_submit_async") {
        try HandleRegistry.with(engine) { handle in
            guard let ticket else { throw CABIError.invalid("ticket is NULL") }
            let (buffer, function) = try checkBatch(handle, input, inputLength, batch, callback)
            // Refused here, synchronously, like every other bad input (not later via sx_wait).
            try handle.engine.checkInput(buffer, batch: batch)
            ticket.pointee = try handle.enqueue(input: buffer, batch: batch, callback: function, userData: userData)
        }
    }
}

@_cdecl("sx_wait")
public func sx_wait(_ engine: OpaquePointer?, _ ticket: UInt64, _ timeoutMilliseconds: Int64) -> sx_status {
    guarded("sx_wait") {
        try HandleRegistry.with(engine) { handle in
            guard !CallbackScope.contains(handle) else { throw CABIError.busy("sx_wait cannot be called from inside this engine's callback") }
            guard try handle.wait(ticket: ticket, timeoutMilliseconds: timeoutMilliseconds) else {
                throw CABIError(status: SX_ERR_TIMEOUT, message: "ticket \(ticket) has not finished within \(timeoutMilliseconds) ms")
            }
        }
    }
}

@_cdecl("sx_submit_labeled")
public func sx_submit_labeled(_ engine: OpaquePointer?, _ input: UnsafePointer<Float>?, _ inputLength: Int, _ batch: Int,
                              _ labels: UnsafePointer<Int32>?, _ labelCount: Int,
                              _ callback: sx_result_fn?, _ userData: UnsafeMutableRawPointer?) -> sx_status {
    guarded("sx_submit_labeled") {
        try HandleRegistry.with(engine) { handle in
            let (buffer, function) = try checkBatch(handle, input, inputLength, batch, callback)
            guard let labels else { throw CABIError.invalid("labels is NULL") }
            // Checked before reading: a count from C may be anything (a size_t above Int.max
            // arrives negative, which would trap the range below).
            guard labelCount == batch else {
                throw CABIError.invalid("host labels: \(labelCount) labels for a batch of \(batch)")
            }
            let values = (0..<labelCount).map { Int(labels[$0]) }
            try handle.deliver(input: buffer, batch: batch, ticket: 0, labels: values, callback: function, userData: userData)
        }
    }
}
