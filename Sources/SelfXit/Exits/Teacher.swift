import FoundationEssentials
import Glibc

/// What the exits learn and are judged against: the full model's outputs for one sample,
/// turned into a distribution over the teacher's classes (paper §3.5, §3.5.1).
///
/// - `classifier`: the model is a classifier; its (first) output, as probabilities (softmax of
///   the logits unless the graph ends in Softmax). Today's behaviour, the default.
/// - `detector`: the model is an object detector whose raw head gives per-anchor class logits
///   `[anchors, classes]` (e.g. SSD's `concat_1`). The frame's class comes from its detections
///   (see `DetectorTeacher.Mode`); below the score threshold the frame's class is "none".
///   Localisation is not needed for a warning (paper §3.5): only the class is taught.
/// - `hostLabels`: the host's own detector (or a person) runs elsewhere and passes one label
///   per sample with the frames that ran fully (`Engine.submit(_:batch:labels:)`); the full
///   model's outputs are not interpreted.
public enum Teacher: Sendable, Equatable {
    case classifier
    case detector(DetectorTeacher)
    case hostLabels(classes: Int)
}

/// A detector teacher's settings (see `Teacher.detector`).
public struct DetectorTeacher: Sendable, Equatable {
    /// How a frame's detections become one class (the paper's three options, §3.5.1).
    public enum Mode: Sendable, Equatable {
        /// The class of the most confident object, whatever its class (the paper's choice).
        case mostConfidentObject
        /// The given class if any anchor scores it above the threshold, else "none".
        case mostConfidentOf(classIndex: Int)
        /// Every anchor above the threshold votes for its class; the teacher is the share of
        /// votes per class (a soft label; "none" when no anchor passes). No NMS: overlapping
        /// anchors of one object each vote.
        case allObjects
    }
    public enum ScoreActivation: String, Sendable, Equatable {
        /// Each class logit on its own (SSD with sigmoid scores).
        case sigmoid
        /// Softmax over the classes of one anchor.
        case softmax
    }
    public var mode: Mode
    /// Name of the output holding the class logits `[anchors, classes]`; nil: the one output
    /// whose per-sample shape is `[anchors, classes]` with classes ≠ 4 (box encodings are 4 wide).
    public var scoresOutput: String?
    public var activation: ScoreActivation
    /// The detector's background class, or nil when it has none. The teacher's class of that
    /// index means "none"; without a background, "none" is an extra class after the last.
    public var backgroundIndex: Int?
    /// Score in (0, 1) an anchor must reach to count as a detection.
    public var scoreThreshold: Float
    /// Models whose outputs are final detections (a run-time-shaped tail after NMS: torchvision's
    /// detectors, issue 13): the outputs holding each detection's label and score (nil: "labels",
    /// and `scoresOutput` or "scores"), and the detector's class count (nil: 91, torchvision's COCO).
    public var labelsOutput: String?
    public var classCount: Int?

    public init(mode: Mode = .mostConfidentObject, scoresOutput: String? = nil, activation: ScoreActivation = .sigmoid,
                backgroundIndex: Int? = 0, scoreThreshold: Float = 0.5) {
        self.mode = mode
        self.scoresOutput = scoresOutput
        self.activation = activation
        self.backgroundIndex = backgroundIndex
        self.scoreThreshold = scoreThreshold
    }
}

/// A class that must not be missed (e.g. person): exits may answer a frame as *not* this class
/// only when, on validation, the share of this class's frames they hide stays within
/// `missBudget` (stricter than the tolerance T), and they warn of it early (warn, then confirm
/// with the full model).
public struct WatchedClass: Sendable, Equatable {
    /// Index among the teacher's classes.
    public var classIndex: Int
    /// Largest share, in (0, 1), of this class's frames (per the full model) an exit may hide
    /// on validation by answering another class.
    public var missBudget: Double
    /// Confidence an exit needs to warn of this class; nil: chosen per exit at build time (the
    /// lowest whose false warnings on validation stay within the tolerance).
    public var warnThreshold: Float?
    /// Share W, in (0, 1), of the validation frames on which the warning exits together may
    /// warn of this class falsely (split W/2^n over them as Eq. 3 splits T; see
    /// `ExitPolicy.warningExits`); nil: the build's tolerance T. Unused with `warnThreshold`.
    public var warningBudget: Double?

    public init(classIndex: Int, missBudget: Double = 0.005, warnThreshold: Float? = nil, warningBudget: Double? = nil) {
        self.classIndex = classIndex
        self.missBudget = missBudget
        self.warnThreshold = warnThreshold
        self.warningBudget = warningBudget
    }
}

extension Teacher {
    /// Parses a teacher spec (the C and Python form):
    /// `classifier` | `host:<classes>` |
    /// `detector[:key=value,...]` with keys `mode` (`most_confident_object`, `all_objects`,
    /// `most_confident_of`), `class` (for `most_confident_of`), `scores` (output name),
    /// `activation` (`sigmoid`|`softmax`), `background` (index or `none`), `threshold`.
    public init(spec: String) throws {
        let trimmed = trimSpaces(spec)
        let kind = trimmed.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        let rest = trimmed.count > kind.count ? String(trimmed.dropFirst(kind.count + 1)) : ""
        switch kind {
        case "", "classifier":
            guard rest.isEmpty else { throw SelfXitError.invalidArgument("teacher 'classifier' takes no options, got '\(rest)'") }
            self = .classifier
        case "host":
            guard let classes = Int(rest), classes >= 2, classes <= 1 << 16 else {
                throw SelfXitError.invalidArgument("teacher 'host:<classes>' needs a class count in 2...65536, got '\(rest)'")
            }
            self = .hostLabels(classes: classes)
        case "detector":
            var teacher = DetectorTeacher()
            var modeName = "most_confident_object"
            var modeClass: Int?
            for item in rest.split(separator: ",") where !item.isEmpty {
                let pair = item.split(separator: "=", maxSplits: 1).map { trimSpaces(String($0)) }
                guard pair.count == 2 else { throw SelfXitError.invalidArgument("teacher option '\(item)' is not key=value") }
                let (key, value) = (pair[0], pair[1])
                switch key {
                case "mode": modeName = value
                case "class":
                    guard let index = Int(value) else { throw SelfXitError.invalidArgument("teacher option class='\(value)' is not an integer") }
                    modeClass = index
                case "scores": teacher.scoresOutput = value
                case "activation":
                    guard let activation = DetectorTeacher.ScoreActivation(rawValue: value) else {
                        throw SelfXitError.invalidArgument("teacher activation must be sigmoid or softmax, got '\(value)'")
                    }
                    teacher.activation = activation
                case "background":
                    if value == "none" { teacher.backgroundIndex = nil } else {
                        guard let index = Int(value) else { throw SelfXitError.invalidArgument("teacher background='\(value)' is not an index or 'none'") }
                        teacher.backgroundIndex = index
                    }
                case "threshold":
                    guard let threshold = Float(value) else { throw SelfXitError.invalidArgument("teacher threshold='\(value)' is not a number") }
                    teacher.scoreThreshold = threshold
                case "labels": teacher.labelsOutput = value
                case "classes":
                    guard let count = Int(value), (1...(1 << 16)).contains(count) else {
                        throw SelfXitError.invalidArgument("teacher classes='\(value)' is not a class count in 1...65536")
                    }
                    teacher.classCount = count
                default:
                    throw SelfXitError.invalidArgument("unknown teacher option '\(key)' (mode, class, scores, activation, background, threshold, labels, classes)")
                }
            }
            switch modeName {
            case "most_confident_object": teacher.mode = .mostConfidentObject
            case "all_objects": teacher.mode = .allObjects
            case "most_confident_of":
                guard let modeClass else { throw SelfXitError.invalidArgument("teacher mode most_confident_of needs class=<index>") }
                teacher.mode = .mostConfidentOf(classIndex: modeClass)
            default:
                throw SelfXitError.invalidArgument("teacher mode must be most_confident_object, most_confident_of or all_objects, got '\(modeName)'")
            }
            self = .detector(teacher)
        default:
            throw SelfXitError.invalidArgument("teacher must be 'classifier', 'detector[:options]' or 'host:<classes>', got '\(spec)'")
        }
    }
}

/// A teacher bound to one graph: which output it reads and how many classes it teaches.
/// Made (and checked) when the engine loads; immutable.
struct ResolvedTeacher: Sendable {
    enum Kind: Sendable {
        case classifier(output: Graph.ValueID, probability: Bool)
        case detector(DetectorTeacher, output: Graph.ValueID, anchors: Int, detectorClasses: Int)
        /// Final detections of a run-time-shaped tail: positions of the scores and labels outputs.
        case tailDetector(DetectorTeacher, scores: Int, labels: Int, detectorClasses: Int)
        case host
    }
    let kind: Kind
    /// Classes of the distribution the exits learn.
    let classes: Int
    /// Index of the "none" class (nothing detected), nil for classifiers and host labels.
    let noneClass: Int?
    let teacher: Teacher

    /// Binds `teacher` to `graph`; throws `invalidArgument` naming what does not fit.
    init(_ teacher: Teacher, graph: Graph, outputIsProbability: Bool) throws {
        self.teacher = teacher
        switch teacher {
        case .classifier:
            let output = graph.outputs[0]
            kind = .classifier(output: output, probability: outputIsProbability)
            classes = graph.values[output].elementsPerSample
            noneClass = nil
        case .hostLabels(let count):
            guard count >= 2 else { throw SelfXitError.invalidArgument("host-label teacher needs at least 2 classes, got \(count)") }
            kind = .host
            classes = count
            noneClass = nil
        case .detector(let detector) where graph.tail != nil:
            // Final detections (issue 13): the tail's labels and scores, one entry a detection.
            let names = graph.tail!.outputs.map(\.name)
            let (scoresName, labelsName) = (detector.scoresOutput ?? "scores", detector.labelsOutput ?? "labels")
            guard let scores = names.firstIndex(of: scoresName), let labels = names.firstIndex(of: labelsName) else {
                throw SelfXitError.invalidArgument("teacher needs the detector's '\(scoresName)' and '\(labelsName)' outputs "
                    + "(outputs: \(names.joined(separator: ", "))): name them with scores=<output>,labels=<output>")
            }
            let detectorClasses = detector.classCount ?? 91
            if let background = detector.backgroundIndex {
                guard (0..<detectorClasses).contains(background), detectorClasses >= 2 else {
                    throw SelfXitError.invalidArgument("teacher background class \(background) is out of range for \(detectorClasses) classes")
                }
            }
            guard detector.scoreThreshold.isFinite, detector.scoreThreshold > 0, detector.scoreThreshold < 1 else {
                throw SelfXitError.invalidArgument("teacher score threshold must lie in (0, 1), got \(detector.scoreThreshold)")
            }
            if case .mostConfidentOf(let index) = detector.mode {
                guard (0..<detectorClasses).contains(index), index != detector.backgroundIndex else {
                    throw SelfXitError.invalidArgument("teacher class \(index) is out of range or the background (\(detectorClasses) classes)")
                }
            }
            kind = .tailDetector(detector, scores: scores, labels: labels, detectorClasses: detectorClasses)
            classes = detector.backgroundIndex == nil ? detectorClasses + 1 : detectorClasses
            noneClass = detector.backgroundIndex ?? detectorClasses
        case .detector(let detector):
            let names = graph.outputs.map { graph.values[$0].name }
            let output: Graph.ValueID
            if let wanted = detector.scoresOutput {
                guard let found = graph.outputs.first(where: { graph.values[$0].name == wanted }) else {
                    throw SelfXitError.invalidArgument("teacher scores output '\(wanted)' is not an output of the model (outputs: \(names.joined(separator: ", ")))")
                }
                output = found
            } else {
                // [anchors, classes] per sample; box encodings ([anchors, 4] or [anchors, 1, 4]) are not scores.
                let shaped = graph.outputs.filter { graph.values[$0].shape.count == 2 && graph.values[$0].shape[1] >= 2 }
                let preferred = shaped.filter { graph.values[$0].shape[1] != 4 }
                let pick = preferred.count == 1 ? preferred : shaped
                guard pick.count == 1 else {
                    throw SelfXitError.invalidArgument("cannot tell which output holds the detector's class scores "
                        + "(\(pick.count) outputs of shape [anchors, classes] among \(names.joined(separator: ", "))): name it with scores=<output>")
                }
                output = pick[0]
            }
            let shape = graph.values[output].shape
            guard shape.count == 2, shape[0] >= 1, shape[1] >= 1 else {
                throw SelfXitError.invalidArgument("teacher scores output '\(graph.values[output].name)' has per-sample shape \(shape); a detector's scores are [anchors, classes]")
            }
            let detectorClasses = shape[1]
            if let background = detector.backgroundIndex {
                guard (0..<detectorClasses).contains(background) else {
                    throw SelfXitError.invalidArgument("teacher background class \(background) is out of range: the scores output has \(detectorClasses) classes")
                }
                guard detectorClasses >= 2 else { throw SelfXitError.invalidArgument("a detector with a background class needs at least 2 classes") }
            }
            guard detector.scoreThreshold.isFinite, detector.scoreThreshold > 0, detector.scoreThreshold < 1 else {
                throw SelfXitError.invalidArgument("teacher score threshold must lie in (0, 1), got \(detector.scoreThreshold)")
            }
            if case .mostConfidentOf(let index) = detector.mode {
                guard (0..<detectorClasses).contains(index), index != detector.backgroundIndex else {
                    throw SelfXitError.invalidArgument("teacher class \(index) is out of range or the background: the scores output has \(detectorClasses) classes"
                        + (detector.backgroundIndex.map { ", background \($0)" } ?? ""))
                }
            }
            kind = .detector(detector, output: output, anchors: shape[0], detectorClasses: detectorClasses)
            classes = detector.backgroundIndex == nil ? detectorClasses + 1 : detectorClasses
            noneClass = detector.backgroundIndex ?? detectorClasses
        }
    }

    var isClassifier: Bool { if case .classifier = kind { return true } else { return false } }

    /// Writes the teacher distribution (`classes` floats) of row `row` of the full model's
    /// outputs, read through `pointer`. Host labels are not computed here (returns false).
    func distribution(row: Int, pointer: (Graph.ValueID) -> UnsafeMutablePointer<Float>, graph: Graph,
                      into out: UnsafeMutableBufferPointer<Float>) -> Bool {
        switch kind {
        case .host:
            return false
        case .classifier(let output, let probability):
            let width = graph.values[output].elementsPerSample
            let source = pointer(output) + row * width
            if probability {
                out.baseAddress!.update(from: source, count: width)
            } else {
                var m = -Float.infinity
                for j in 0..<width { m = max(m, source[j]) }
                var sum: Float = 0
                for j in 0..<width { out[j] = expf(source[j] - m); sum += out[j] }
                for j in 0..<width { out[j] /= sum }
            }
            return true
        case .tailDetector(let detector, let scoresIndex, let labelsIndex, let detectorClasses):
            // The tail of this row's image, then the detections it reports (already after NMS,
            // scores are probabilities). A failing tail makes the distribution NaN: never taught.
            guard let tail = graph.tail,
                  let results = try? tail.run(prefix: { UnsafePointer(pointer($0) + row * graph.values[$0].elementsPerSample) },
                                              pool: ThreadPool.serial()) else {
                for j in out.indices { out[j] = .nan }
                return true
            }
            let scores = results[scoresIndex].floats, labels = results[labelsIndex].ints
            Self.finalDetectionDistribution(detector, scores: scores, labels: labels, detectorClasses: detectorClasses,
                                            noneClass: noneClass!, into: out)
            return true
        case .detector(let detector, let output, let anchors, let detectorClasses):
            let logits = UnsafePointer(pointer(output) + row * anchors * detectorClasses)
            Self.detectorDistribution(detector, logits: logits, anchors: anchors, detectorClasses: detectorClasses,
                                      noneClass: noneClass!, into: out)
            return true
        }
    }

    /// The detector teacher of one frame (see `DetectorTeacher.Mode`). A NaN logit makes the
    /// distribution NaN (the frame is then flagged non-finite and never taught).
    static func detectorDistribution(_ detector: DetectorTeacher, logits: UnsafePointer<Float>, anchors: Int, detectorClasses: Int,
                                     noneClass: Int, into out: UnsafeMutableBufferPointer<Float>) {
        for j in out.indices { out[j] = 0 }
        var bestScore: Float = -1, bestClass = -1
        var votes = [Float](repeating: 0, count: detectorClasses)
        var sawNaN = false
        var scores = [Float](repeating: 0, count: detectorClasses)
        for anchor in 0..<anchors {
            let z = logits + anchor * detectorClasses
            switch detector.activation {
            case .sigmoid:
                for c in 0..<detectorClasses { scores[c] = 1 / (1 + expf(-z[c])) }
            case .softmax:
                var m = -Float.infinity
                for c in 0..<detectorClasses { m = max(m, z[c]) }
                var sum: Float = 0
                for c in 0..<detectorClasses { scores[c] = expf(z[c] - m); sum += scores[c] }
                for c in 0..<detectorClasses { scores[c] /= sum }
            }
            for c in 0..<detectorClasses where c != detector.backgroundIndex {
                let s = scores[c]
                if s.isNaN { sawNaN = true; continue }
                switch detector.mode {
                case .mostConfidentObject:
                    if s > bestScore { bestScore = s; bestClass = c }
                case .mostConfidentOf(let watched):
                    if c == watched, s > bestScore { bestScore = s; bestClass = c }
                case .allObjects:
                    if s >= detector.scoreThreshold { votes[c] += 1 }
                }
            }
        }
        if sawNaN {
            for j in out.indices { out[j] = .nan }
            return
        }
        switch detector.mode {
        case .mostConfidentObject, .mostConfidentOf:
            out[bestClass >= 0 && bestScore >= detector.scoreThreshold ? bestClass : noneClass] = 1
        case .allObjects:
            let total = votes.reduce(0, +)
            if total == 0 { out[noneClass] = 1 } else { for c in 0..<detectorClasses { out[c] = votes[c] / total } }
        }
    }

    /// The teacher of one frame from final detections (label and score each; see
    /// `DetectorTeacher.Mode`): labels outside the class range and NaN scores are skipped.
    static func finalDetectionDistribution(_ detector: DetectorTeacher, scores: [Float], labels: [Int64], detectorClasses: Int,
                                           noneClass: Int, into out: UnsafeMutableBufferPointer<Float>) {
        for j in out.indices { out[j] = 0 }
        var bestScore: Float = -1, bestClass = -1
        var votes = [Float](repeating: 0, count: detectorClasses)
        for (score, label) in zip(scores, labels) {
            guard label >= 0, label < Int64(detectorClasses), Int(label) != detector.backgroundIndex, !score.isNaN else { continue }
            let c = Int(label)
            switch detector.mode {
            case .mostConfidentObject:
                if score > bestScore { bestScore = score; bestClass = c }
            case .mostConfidentOf(let watched):
                if c == watched, score > bestScore { bestScore = score; bestClass = c }
            case .allObjects:
                if score >= detector.scoreThreshold { votes[c] += 1 }
            }
        }
        switch detector.mode {
        case .mostConfidentObject, .mostConfidentOf:
            out[bestClass >= 0 && bestScore >= detector.scoreThreshold ? bestClass : noneClass] = 1
        case .allObjects:
            let total = votes.reduce(0, +)
            if total == 0 { out[noneClass] = 1 } else { for c in 0..<detectorClasses { out[c] = votes[c] / total } }
        }
    }

    /// Checks the watched classes against the teacher's classes.
    func validate(_ watched: [WatchedClass]) throws {
        var seen = Set<Int>()
        for (position, w) in watched.enumerated() {
            guard (0..<classes).contains(w.classIndex) else {
                throw SelfXitError.invalidArgument("watched class \(w.classIndex) (entry \(position)) is out of range: the teacher has \(classes) classes")
            }
            guard w.classIndex != noneClass else {
                throw SelfXitError.invalidArgument("watched class \(w.classIndex) is the teacher's 'none' class (the detector's background)")
            }
            guard seen.insert(w.classIndex).inserted else { throw SelfXitError.invalidArgument("watched class \(w.classIndex) is named twice") }
            guard w.missBudget.isFinite, w.missBudget > 0, w.missBudget < 1 else {
                throw SelfXitError.invalidArgument("miss budget of watched class \(w.classIndex) must lie in (0, 1), got \(w.missBudget)")
            }
            if let t = w.warnThreshold {
                guard t.isFinite, t > 0, t <= 1 else {
                    throw SelfXitError.invalidArgument("warn threshold of watched class \(w.classIndex) must lie in (0, 1], got \(t)")
                }
            }
            if let b = w.warningBudget {
                guard b.isFinite, b > 0, b < 1 else {
                    throw SelfXitError.invalidArgument("warning budget of watched class \(w.classIndex) must lie in (0, 1), got \(b)")
                }
            }
        }
    }
}

/// `text` without leading and trailing spaces and tabs.
private func trimSpaces(_ text: String) -> String {
    String(text.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
}

/// What exits learned from, as an exit bundle of format 2 records it: a bundle's heads and
/// watched-class guards hold only for the teacher they were built with, so loading checks it.
/// Outputs are stored by name (resolved: a detector's default scores output is named too).
struct TeacherRecord: Codable, Equatable, Sendable {
    /// "classifier", "detector" or "host".
    var kind: String
    /// The teacher's class count (not named "classes": a bundle's heads use that key).
    var classCount: Int
    /// The output read (classifier, detector).
    var output: String?
    /// Detector: mode ("most_confident_object", "most_confident_of", "all_objects"), its class,
    /// score activation, background index (nil: none) and score threshold.
    var mode: String?
    var modeClass: Int?
    var activation: String?
    var background: Int?
    var scoreThreshold: Float?

    /// A short description for messages ("detector(most_confident_object, scores concat_1:0, …)").
    var text: String {
        switch kind {
        case "detector":
            let mode = (self.mode ?? "?") + (modeClass.map { " class \($0)" } ?? "")
            return "detector(\(mode), scores '\((output ?? "?").prefix(200))', \(activation ?? "?"), background "
                + (background.map(String.init) ?? "none") + ", threshold \(scoreThreshold.map { "\($0)" } ?? "?"), \(classCount) classes)"
        case "classifier": return "classifier('\((output ?? "?").prefix(200))', \(classCount) classes)"
        case "host": return "host labels (\(classCount) classes)"
        default: return "'\(kind.prefix(40))' (\(classCount) classes)"
        }
    }
}

extension ResolvedTeacher {
    /// This teacher as an exit bundle records it.
    func record(graph: Graph) -> TeacherRecord {
        switch kind {
        case .classifier(let output, _):
            return TeacherRecord(kind: "classifier", classCount: classes, output: graph.values[output].name)
        case .host:
            return TeacherRecord(kind: "host", classCount: classes)
        case .detector(let detector, let output, _, _):
            return Self.detectorRecord(detector, classes: classes, output: graph.values[output].name)
        case .tailDetector(let detector, let scores, _, _):
            // Final detections of a run-time tail: the scores output names it, as the raw-head one does.
            return Self.detectorRecord(detector, classes: classes, output: graph.tail.map { $0.outputs[scores].name } ?? "?")
        }
    }

    private static func detectorRecord(_ detector: DetectorTeacher, classes: Int, output: String) -> TeacherRecord {
        var record = TeacherRecord(kind: "detector", classCount: classes, output: output,
                                   activation: detector.activation.rawValue, background: detector.backgroundIndex,
                                   scoreThreshold: detector.scoreThreshold)
        switch detector.mode {
        case .mostConfidentObject: record.mode = "most_confident_object"
        case .mostConfidentOf(let index): record.mode = "most_confident_of"; record.modeClass = index
        case .allObjects: record.mode = "all_objects"
        }
        return record
    }
}
