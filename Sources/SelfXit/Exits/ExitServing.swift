import FoundationEssentials
import Glibc

// Exits that stay honest in production (issue 16): audited serving, a live guard per exit,
// background rebuilds with progress and cancel, and a rebuild policy.
//
// Audited serving. A seeded fraction `auditRate` of the frames an exit answers keeps running
// through the full model after its callback has run (the caller has its answer; the audit costs
// the submitting thread the rest of the backbone for that frame, never a second callback). The
// full model's answer is (1) compared with the exit's, giving that exit's live agreement, and
// (2) recorded for exit building. To keep the collection a uniform sample of all traffic (the
// engine used to collect only frames the exits let through, i.e. the hard ones), while exits
// serve every frame has the same chance `auditRate` of being recorded: an exit-answered frame
// when it is audited, a backbone-answered frame by an independent draw at the same rate. With no
// exit in service every frame is recorded, as before. auditRate 0 keeps the old behaviour
// (backbone-answered frames only, a biased collection).
//
// Live guard. Per exit in service, the guard bounds the exit's contribution to the disagreement
// with the full model, `share × q` (share: frames it answers; q: the disagreement rate among
// them). q's (1−δ) Clopper–Pearson upper bound uses a window that starts filled with the build's
// validation outcomes at that exit (the evidence the threshold was chosen on) and that live
// audits displace one by one, so a long good history cannot drown a change; share pools
// the live counts with validation's. When the bound exceeds the exit's budget T/2^n (n: its
// position, as in Eq. 3) and at least one live disagreement has been seen, the exit is taken out
// of service at once (later exits keep their thresholds, whose budgets were smaller still), the
// trip is counted and reported, and a rebuild is requested. Pooling with validation stops a
// handful of audits from tripping an exit whose build evidence is good; the "one live
// disagreement" rule (in the window) stops the prior alone from tripping one built with the
// point rule.

/// Options of audited serving, the live guard and the rebuild policy (`Engine.configureServing`).
public struct ExitServingOptions: Sendable {
    /// Share of exit-answered frames that also run the full model, in [0, 1]. Default 0.02.
    public var auditRate: Double
    /// Seed of the audit and collection draws.
    public var seed: UInt64
    /// Whether the live guard takes exits out of service. Default false: a guard trip changes
    /// which exit answers, so it is the host's choice; meant with `ExitThresholdRule.guaranteed`
    /// builds (with point-rule thresholds the validation evidence alone already exceeds the
    /// budget's bound, and the first audited disagreement trips the exit).
    public var guardEnabled: Bool
    /// The guard's bounds are (1 − guardDelta) Clopper–Pearson bounds; in (0, 1). Default 0.05.
    public var guardDelta: Double
    /// The guard judges each exit on a window of max(`guardWindow`, its validation exit
    /// answers) outcomes that starts filled with the build's validation outcomes at that exit,
    /// which live audits displace one by one, then the oldest audits leave first: the same data
    /// as at the build gives the same bound, and a change shows after a few audits whatever the
    /// history. `guardWindow` ≥ 1, default 400; `guardPriorFrames` > 0 caps the validation part
    /// (0, default: no cap).
    public var guardWindow: Int
    public var guardPriorFrames: Int
    /// Start a background rebuild after a guard trip, once `collectAfterTrip` frames (at least
    /// the rebuild's minimumSamples) have been collected since the trip. Default false.
    public var rebuildOnGuardTrip: Bool
    public var collectAfterTrip: Int
    /// > 0: also start a background rebuild once this many frames were collected since the
    /// exits in service were installed (or the last background build began). 0 (default): no
    /// count-based rebuild.
    public var rebuildAfterCollected: Int
    /// Drop the collected frames when the guard trips, so the rebuild learns from traffic after
    /// the change only. Default false.
    public var restartCollectionOnTrip: Bool
    /// Options of the rebuilds the policy starts (threads default to 1 there).
    public var rebuildOptions: ExitBuildOptions
    /// Hears guard trips and policy rebuilds, on the thread where they happen (a submitting
    /// thread, or the build's thread), outside the engine's locks. It may call the engine.
    public var onEvent: (@Sendable (ExitServingEvent) -> Void)?

    public init(auditRate: Double = 0.02, seed: UInt64 = 0, guardEnabled: Bool = false, guardDelta: Double = 0.05,
                guardWindow: Int = 400, guardPriorFrames: Int = 0,
                rebuildOnGuardTrip: Bool = false, collectAfterTrip: Int = 0, rebuildAfterCollected: Int = 0,
                restartCollectionOnTrip: Bool = false,
                rebuildOptions: ExitBuildOptions = ExitBuildOptions(), onEvent: (@Sendable (ExitServingEvent) -> Void)? = nil) {
        self.guardWindow = guardWindow
        self.guardPriorFrames = guardPriorFrames
        self.collectAfterTrip = collectAfterTrip
        self.auditRate = auditRate
        self.seed = seed
        self.guardEnabled = guardEnabled
        self.guardDelta = guardDelta
        self.rebuildOnGuardTrip = rebuildOnGuardTrip
        self.rebuildAfterCollected = rebuildAfterCollected
        self.restartCollectionOnTrip = restartCollectionOnTrip
        self.rebuildOptions = rebuildOptions
        self.onEvent = onEvent
    }

    func validated() throws -> ExitServingOptions {
        guard auditRate >= 0, auditRate <= 1 else { throw SelfXitError.invalidArgument("audit rate must lie in [0, 1], got \(auditRate)") }
        guard guardDelta > 0, guardDelta < 1 else { throw SelfXitError.invalidArgument("guard delta must lie in (0, 1), got \(guardDelta)") }
        guard guardWindow >= 1, guardWindow <= 1 << 20 else { throw SelfXitError.invalidArgument("guard window must lie in 1...1048576, got \(guardWindow)") }
        guard guardPriorFrames >= 0 else { throw SelfXitError.invalidArgument("guardPriorFrames must not be negative, got \(guardPriorFrames)") }
        guard collectAfterTrip >= 0 else { throw SelfXitError.invalidArgument("collectAfterTrip must not be negative, got \(collectAfterTrip)") }
        guard rebuildAfterCollected >= 0 else {
            throw SelfXitError.invalidArgument("rebuildAfterCollected must not be negative, got \(rebuildAfterCollected)")
        }
        _ = try rebuildOptions.validated()
        return self
    }
}

/// Something the guard or the rebuild policy did.
public struct ExitServingEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// An exit was taken out of service (`exitIndex`).
        case guardTripped = "guard_tripped"
        /// A background build started (by the policy or by `startExitBuild`).
        case rebuildStarted = "rebuild_started"
        /// A background build put its exits in service.
        case rebuildSucceeded = "rebuild_succeeded"
        case rebuildCancelled = "rebuild_cancelled"
        case rebuildFailed = "rebuild_failed"
    }
    public var kind: Kind
    /// The exit concerned (candidate index), or −1.
    public var exitIndex: Int
    public var message: String
}

/// Live figures of one exit in service (`Engine.servingStats`).
public struct ExitLiveStats: Sendable, Codable, Equatable {
    public var exitIndex: Int
    /// 1-based position among the active exits (its budget is T/2^position).
    public var position: Int
    /// "serving", "out_of_service" (the guard tripped), or "unguarded" (no tolerance in its
    /// build report, e.g. a bundle from an older version).
    public var state: String
    /// Frames it answered since the exits were installed, and of those, audited and agreeing.
    public var answered: Int
    public var audited: Int
    public var agreeing: Int
    /// agreeing / audited (1 with no audit yet), and its (1−δ) lower bound (pooled with validation).
    public var liveAgreement: Double
    public var agreementLowerBound: Double
    /// The guard's statistic: share × upper bound of q, and the budget it is compared with.
    public var disagreementBound: Double
    public var budget: Double
}

/// Audit, guard and background-build figures (`Engine.servingStats`).
public struct ExitServingStats: Sendable, Codable, Equatable {
    public var auditRate: Double
    /// Frames submitted since the exits were installed; of those, audited.
    public var frames: Int
    public var audited: Int
    /// FLOPs the audits spent beyond the answers (the rest of the backbone for audited frames).
    public var auditFLOPs: Double
    public var guardTrips: Int
    public var rebuildRequested: Bool
    public var exits: [ExitLiveStats]
    /// Background builds: whether one runs, where it stands, and how they ended.
    public var buildRunning: Bool
    public var buildStage: String
    public var buildFraction: Double
    public var buildMessage: String
    public var buildsStarted: Int
    public var buildsSucceeded: Int
    public var buildsCancelled: Int
    public var buildsFailed: Int
    public var lastBuildError: String
}

/// Per-engine state of audited serving and background builds. Thread-safe (one lock, never held
/// while calling out).
final class ExitServingMonitor: @unchecked Sendable {
    struct Entry {
        let exitIndex: Int
        let position: Int
        let budget: Double?
        let priorExits: Int, priorMisses: Int, priorFrames: Int
        var answered = 0, audited = 0, agreeing = 0
        var outOfService = false
        /// The guard's evidence window (`capacity` outcomes): it starts filled with the build's
        /// validation outcomes at this exit (`priorTrials`, `priorMissCount`), which live audits
        /// displace one by one (a prior outcome leaves with its share of misses), then the oldest
        /// live audits leave first (a ring).
        var capacity = 1
        var priorTrials = 0.0, priorMissCount = 0.0
        var recent: [Bool] = []
        var recentNext = 0, recentMisses = 0

        mutating func remember(disagreed: Bool) {
            if priorTrials >= 1, Int(priorTrials.rounded()) + recent.count >= capacity {
                priorMissCount -= priorMissCount / priorTrials
                priorTrials -= 1
            }
            if recent.count < capacity {
                recent.append(disagreed)
            } else {
                if recent[recentNext] { recentMisses -= 1 }
                recent[recentNext] = disagreed
                recentNext = (recentNext + 1) % capacity
            }
            if disagreed { recentMisses += 1 }
        }
    }

    /// What one submit call needs, taken once per call.
    struct View {
        let configuration: ObjectIdentifier?
        let outOfService: [Bool]   // by position in `active`
        let auditRate: Double
        var isAuditing: Bool { auditRate > 0 }
    }

    private let lock = PosixLock()
    private let buildDone = PosixCondition()
    private(set) var options = ExitServingOptions()
    private var random = SeededRandom(seed: 0)
    private var configuration: ObjectIdentifier?
    private var entries: [Entry] = []
    private var frames = 0, audited = 0, guardTrips = 0
    private var auditFLOPs = 0.0
    private var rebuildRequested = false
    private var collectedSinceBuild = 0, collectedSinceTrip = 0
    // Background build state.
    private(set) var building = false
    private var cancelRequested = false
    private var progress = ExitBuildProgress(fraction: 0, stage: .prepare, message: "")
    private var started = 0, succeeded = 0, cancelled = 0, failed = 0
    private var lastError = ""
    private(set) var lastFailure: SelfXitError?
    private var closed = false

    func configure(_ new: ExitServingOptions) {
        lock.withLock {
            options = new
            random = SeededRandom(seed: new.seed)
        }
    }

    /// Called by `Engine.install`: new exits, fresh live counts (the guard judges each build anew).
    func reset(for configuration: ExitConfiguration?) {
        var fresh: [Entry] = []
        let guardOptions = lock.withLock { (window: options.guardWindow, priorFrames: options.guardPriorFrames) }
        if let configuration {
            let report = configuration.report
            for (offset, exit) in configuration.active.enumerated() {
                let entry = report.exits.first { $0.candidateIndex == exit.candidateIndex }
                let budget = report.tolerance.map { $0 * Double(sign: .plus, exponent: -(offset + 1), significand: 1) }
                var item = Entry(exitIndex: exit.candidateIndex, position: offset + 1, budget: budget,
                                 priorExits: entry?.validationExits ?? 0, priorMisses: entry?.validationMisses ?? 0,
                                 priorFrames: entry?.validationExits == nil ? 0 : report.validationSamples)
                // The window is at least as wide as the build's evidence, so that the same data
                // cannot give a wider bound live than at the build; a cap shrinks the prior.
                let cap = guardOptions.priorFrames > 0 ? guardOptions.priorFrames : Int.max
                let scale = item.priorExits > cap ? Double(cap) / Double(item.priorExits) : 1
                item.priorTrials = Double(item.priorExits) * scale
                item.priorMissCount = Double(item.priorMisses) * scale
                item.capacity = max(guardOptions.window, Int(item.priorTrials.rounded()), 1)
                fresh.append(item)
            }
        }
        lock.withLock {
            self.configuration = configuration.map(ObjectIdentifier.init)
            entries = fresh
            frames = 0
            audited = 0
            auditFLOPs = 0
            rebuildRequested = false
            collectedSinceBuild = 0
        }
    }

    func view(for configuration: ExitConfiguration?) -> View {
        lock.withLock {
            let id = configuration.map(ObjectIdentifier.init)
            guard let configuration, id == self.configuration, !configuration.active.isEmpty else {
                return View(configuration: id, outOfService: [], auditRate: 0)
            }
            return View(configuration: id, outOfService: entries.map(\.outOfService), auditRate: options.auditRate)
        }
    }

    /// Draws whether an exit-answered frame is audited (also: whether a backbone-answered frame
    /// is collected while exits serve), at the audit rate, from the seeded generator.
    func draw(_ view: View) -> Bool {
        guard view.auditRate > 0 else { return false }
        if view.auditRate >= 1 { return true }
        return lock.withLock { random.uniform() < view.auditRate }
    }

    /// Counts one submit's frames and, per active position, the frames answered there.
    func note(_ view: View, frames count: Int, answered: [Int]) {
        lock.withLock {
            guard view.configuration == configuration, view.configuration != nil else { return }
            frames += count
            for (position, n) in answered.enumerated() where position < entries.count { entries[position].answered += n }
        }
    }

    /// Records audited frames' outcomes `(position, agrees)` and their extra FLOPs; runs the
    /// guard. Returns the trips (candidate indices) it caused and whether a rebuild should start.
    func recordAudits(_ view: View, _ outcomes: [(position: Int, agrees: Bool)], extraFLOPs: Double) -> (tripped: [Int], startRebuild: Bool) {
        lock.withLock {
            guard view.configuration == configuration, view.configuration != nil else { return ([], false) }
            audited += outcomes.count
            auditFLOPs += extraFLOPs
            var tripped: [Int] = []
            for (position, agrees) in outcomes where position < entries.count {
                entries[position].audited += 1
                if agrees { entries[position].agreeing += 1 }
                entries[position].remember(disagreed: !agrees)
            }
            if options.guardEnabled {
                for position in Set(outcomes.map(\.position)).sorted() where position < entries.count {
                    let entry = entries[position]
                    guard !entry.outOfService, let budget = entry.budget, entry.recentMisses > 0 else { continue }
                    if bound(entry) > budget {
                        entries[position].outOfService = true
                        guardTrips += 1
                        rebuildRequested = true
                        collectedSinceTrip = 0
                        tripped.append(entry.exitIndex)
                    }
                }
            }
            return (tripped, false)
        }
    }

    /// Counts frames recorded for building; true when the policy asks for a rebuild now.
    func noteCollected(_ count: Int) -> Bool {
        lock.withLock {
            collectedSinceBuild += count
            collectedSinceTrip += count
            guard !building else { return false }
            let needed = max(options.collectAfterTrip, options.rebuildOptions.minimumSamples)
            if options.rebuildOnGuardTrip, rebuildRequested, collectedSinceTrip >= needed { return true }
            if options.rebuildAfterCollected > 0, collectedSinceBuild >= options.rebuildAfterCollected { return true }
            return false
        }
    }

    /// The evidence q is judged on: the window (validation outcomes at this exit, displaced by
    /// the live audits as they come; see `Entry.remember`). Returns (disagreements, trials).
    private func evidence(_ entry: Entry) -> (misses: Int, trials: Int) {
        (Int(entry.priorMissCount.rounded()) + entry.recentMisses, Int(entry.priorTrials.rounded()) + entry.recent.count)
    }

    /// share × (1−δ) upper bound of q; share pools live counts with validation's.
    private func bound(_ entry: Entry) -> Double {
        let (misses, trials) = evidence(entry)
        let q = BinomialBound.upper(successes: misses, trials: trials, delta: options.guardDelta)
        let frameCount = entry.priorFrames + frames
        let share = frameCount == 0 ? 1 : min(1, Double(entry.priorExits + entry.answered) / Double(frameCount))
        return share * q
    }

    func stats(collectedRateNote: Void = ()) -> ExitServingStats {
        lock.withLock {
            let exits = entries.map { entry -> ExitLiveStats in
                let (misses, trials) = evidence(entry)
                let state = entry.outOfService ? "out_of_service" : (entry.budget == nil ? "unguarded" : "serving")
                return ExitLiveStats(exitIndex: entry.exitIndex, position: entry.position, state: state, answered: entry.answered,
                                     audited: entry.audited, agreeing: entry.agreeing,
                                     liveAgreement: entry.audited == 0 ? 1 : Double(entry.agreeing) / Double(entry.audited),
                                     agreementLowerBound: 1 - BinomialBound.upper(successes: misses, trials: trials, delta: options.guardDelta),
                                     disagreementBound: bound(entry), budget: entry.budget ?? .infinity)
            }
            return ExitServingStats(auditRate: options.auditRate, frames: frames, audited: audited, auditFLOPs: auditFLOPs,
                                    guardTrips: guardTrips, rebuildRequested: rebuildRequested, exits: exits,
                                    buildRunning: building, buildStage: progress.stage.rawValue, buildFraction: progress.fraction,
                                    buildMessage: progress.message, buildsStarted: started, buildsSucceeded: succeeded,
                                    buildsCancelled: cancelled, buildsFailed: failed, lastBuildError: lastError)
        }
    }

    // MARK: Background builds

    func beginBuild() throws {
        try lock.withLock {
            guard !closed else { throw SelfXitError.wrongState("the engine is shutting down; no background build starts") }
            guard !building else { throw SelfXitError.busy("an exit build is already running in the background; cancel it or wait for it") }
            building = true
            cancelRequested = false
            collectedSinceBuild = 0
            started += 1
            progress = ExitBuildProgress(fraction: 0, stage: .prepare, message: "starting")
        }
    }

    /// Records progress; true when the build should stop (a cancel was asked for).
    func buildProgress(_ value: ExitBuildProgress) -> Bool {
        lock.withLock {
            progress = value
            return cancelRequested
        }
    }

    /// No background build starts any more (the engine is being freed).
    func close() { lock.withLock { closed = true } }

    var lastBuildFailure: SelfXitError? { lock.withLock { lastFailure } }

    func requestCancel() throws {
        try lock.withLock {
            guard building else { throw SelfXitError.wrongState("no exit build is running in the background") }
            cancelRequested = true
        }
    }

    enum Outcome { case succeeded, cancelled(SelfXitError), failed(SelfXitError) }

    func endBuild(_ outcome: Outcome) {
        lock.withLock {
            switch outcome {
            case .succeeded: succeeded += 1; rebuildRequested = false; lastFailure = nil
            case .cancelled(let error): cancelled += 1; lastFailure = error
            case .failed(let error): failed += 1; lastError = error.description; lastFailure = error
            }
            building = false
            cancelRequested = false
        }
        buildDone.lock()
        buildDone.broadcast()
        buildDone.unlock()
    }

    /// Waits until no background build runs; false when `timeoutSeconds` (≥ 0) passed first.
    func waitForBuild(timeoutSeconds: Double?) -> Bool {
        let deadline = timeoutSeconds.map { MonotonicClock.nanoseconds() + UInt64(max(0, $0) * 1e9) }
        buildDone.lock()
        defer { buildDone.unlock() }
        while lock.withLock({ building }) {
            if let deadline {
                if MonotonicClock.nanoseconds() >= deadline { return false }
                buildDone.wait(untilNanoseconds: min(deadline, MonotonicClock.nanoseconds() + 50_000_000))
            } else {
                buildDone.wait(untilNanoseconds: MonotonicClock.nanoseconds() + 50_000_000)
            }
        }
        return true
    }
}

/// Runs a closure on a new detached pthread (the background build's thread).
private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

extension Engine {
    /// Sets audited serving, the live guard and the rebuild policy. Takes effect for the next
    /// submit; the live counts of the exits in service are kept.
    /// - Throws: `invalidArgument` for an audit rate outside [0, 1], a guard delta outside
    ///   (0, 1), a negative rebuild count or bad rebuild options (nothing changes then).
    public func configureServing(_ options: ExitServingOptions) throws {
        serving.configure(try options.validated())
    }

    public var servingOptions: ExitServingOptions { serving.options }

    /// Audit, guard and background-build figures.
    public func servingStats() -> ExitServingStats { serving.stats() }

    /// Starts an exit build on a new background thread and returns at once. Inference goes on
    /// with the current exits meanwhile; the new exits replace them atomically when the build
    /// completes (`updateExits` does the work). The thread runs at the lowest scheduling priority
    /// (nice +19, that thread only) and, unless `options.threads` says otherwise, on one kernel
    /// thread, so inference keeps the other cores. `options.onProgress` runs on the build's
    /// thread; `.cancel` from it, or `cancelExitBuild()`, stops the build (the exits in service
    /// stay). The thread holds the engine until it ends.
    /// - Throws: `busy` while a background build runs; `invalidArgument` for bad options;
    ///   `outOfMemory` when the OS refuses the thread. The engine is unchanged then.
    public func startExitBuild(_ options: ExitBuildOptions = ExitBuildOptions()) throws {
        var options = try options.validated()
        if options.threads == nil { options.threads = 1 }
        try serving.beginBuild()
        let user = options.onProgress
        let monitor = serving
        options.onProgress = { progress in
            let stop = monitor.buildProgress(progress)
            let answer = user?(progress) ?? .proceed
            return stop ? .cancel : answer
        }
        let eventHandler = serving.options.onEvent
        let body = ThreadBody { [self] in
            // Lower priority for this thread only: on Linux the nice value is per thread and
            // PRIO_PROCESS with who = 0 names the calling thread (setpriority(2), BUGS); threads
            // it starts (the trainer's) inherit it. Failure to lower it is harmless.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
            do {
                let report = try updateExits(options)
                monitor.endBuild(.succeeded)
                eventHandler?(ExitServingEvent(kind: .rebuildSucceeded, exitIndex: -1,
                                               message: "active exits \(report.exits.filter(\.active).map(\.candidateIndex))"))
            } catch let error as SelfXitError {
                if case .cancelled(let message) = error {
                    monitor.endBuild(.cancelled(error))
                    eventHandler?(ExitServingEvent(kind: .rebuildCancelled, exitIndex: -1, message: message))
                } else {
                    monitor.endBuild(.failed(error))
                    eventHandler?(ExitServingEvent(kind: .rebuildFailed, exitIndex: -1, message: error.description))
                }
            } catch {
                monitor.endBuild(.failed(.internalError("\(error)")))
                eventHandler?(ExitServingEvent(kind: .rebuildFailed, exitIndex: -1, message: "\(error)"))
            }
        }
        let box = Unmanaged.passRetained(body).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            let body = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
            body.body()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            let error = SelfXitError.outOfMemory("could not start the exit build's thread: pthread_create failed (\(String(cString: strerror(rc))))")
            serving.endBuild(.failed(error))
            throw error
        }
        pthread_detach(thread)
        eventHandler?(ExitServingEvent(kind: .rebuildStarted, exitIndex: -1, message: "background exit build started"))
    }

    /// Asks the background build to stop; it ends within a fraction of a second (wait for it
    /// with `waitForExitBuild`), the exits in service staying. A cancel that arrives after the
    /// build's last check (the new exits are being installed) is too late: that build completes.
    /// - Throws: `wrongState` when no background build is running.
    public func cancelExitBuild() throws { try serving.requestCancel() }

    /// Whether a background build is running.
    public var exitBuildRunning: Bool { serving.building }

    /// Waits for the background build to end (nil: for ever); false on timeout.
    @discardableResult
    public func waitForExitBuild(timeoutSeconds: Double? = nil) -> Bool { serving.waitForBuild(timeoutSeconds: timeoutSeconds) }

    /// How the last background build ended: nil when it put its exits in service (or none
    /// ran), else its error (`cancelled` for a cancelled one).
    public var lastExitBuildError: SelfXitError? { serving.lastBuildFailure }

    /// Stops background builds for good: cancels a running one and waits for it, and no policy
    /// starts another. For an engine about to be freed (the C library's sx_engine_destroy).
    public func shutDownExitBuilds() {
        serving.close()
        try? serving.requestCancel()
        _ = serving.waitForBuild(timeoutSeconds: nil)
    }

    /// `servingStats()` as a JSON object (snake_case keys).
    public func servingStatsJSON() -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .custom { path in SnakeCaseKey(path.last?.stringValue ?? "") }
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let data = try? encoder.encode(servingStats()) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Called by submit after it recorded `count` frames: starts the policy's rebuild if due.
    func servingCollected(_ count: Int) {
        guard count > 0 else { return }
        // A failed start (e.g. BUSY: a build began meanwhile) is retried at the next collection.
        if serving.noteCollected(count) { try? startExitBuild(serving.options.rebuildOptions) }
    }

    /// Called by submit after a trip: events, and the collection restart the policy asks for.
    func servingTripped(_ exits: [Int]) {
        guard !exits.isEmpty else { return }
        let options = serving.options
        if options.restartCollectionOnTrip { collector.removeAll() }
        for exit in exits {
            options.onEvent?(ExitServingEvent(kind: .guardTripped, exitIndex: exit,
                                              message: "exit \(exit) taken out of service: its live disagreement bound exceeds its share of T"))
        }
    }
}
