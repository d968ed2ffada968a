import Features
import Foundation
import Inference

/// The stage between capture and reporting: stage 1 (`ActivityDetector`) on every sample, the reason
/// model's log-mel front end on every sample (cheap: ~31 frames/s), and — only while something is louder
/// than the background — stage 2: the cry detector (`CryDetector`: YAMNet + cry head on 0.975 s patches
/// every 0.48 s by default, or the CRNN on the reason front end's frames), then the reason CRNN on cry
/// windows. `EpisodeTracker` turns the windows into start/update/end events. Each distinct front end is
/// computed once: the CRNN detector shares the reason model's; YAMNet's is computed per scored patch.
///
/// One instance per audio stream, used from one task at a time (it owns the engines' scratch memory).
public final class CryGate {
    public private(set) var settings: GateSettings
    public private(set) var detectorModel: CryDetectorModel
    public private(set) var reasonModel: ModelBundle
    public let featureParameters: LogMelParameters

    private let extractor: LogMelExtractor
    private var detector: any CryDetector
    private var reasonEngine: CRNNEngine
    private var activity: ActivityDetector
    private var tracker: EpisodeTracker
    private let windowFrames: Int
    /// The last `windowFrames` reason feature frames, oldest first (a sliding buffer, compacted in place).
    private var recent: [Float]
    private var features: FeatureMatrix
    private var totalFrames = 0
    private var reasonLog: [Float]
    private var levelEnergy = 0.0, levelCount = 0, levelStart = 0.0
    private var streamTime = 0.0
    private var baseDate: Date?
    private var evidence = EvidenceCollector()

    /// What the home has taught the node (caregiver feedback): consulted for every patch the cry head scores
    /// at or above the threshold. Nil: the cry head alone decides.
    public var veto: (any CryVeto)?
    /// Patches the veto silenced since the start.
    public private(set) var vetoedPatches = 0

    /// Counters for diagnostics: analysis ticks, windows analysed by each model (ticks - cry windows =
    /// ticks the activity detector kept the models asleep), and recent inference latencies.
    public private(set) var analysisTicks = 0
    public private(set) var cryWindowsAnalysed = 0
    public private(set) var reasonWindowsAnalysed = 0
    private var latencies = [Double](repeating: 0, count: 512)
    private var latencyCount = 0

    /// Share of analysis ticks on which stage 2 ran (the "gate open ratio").
    public var gateOpenRatio: Double { analysisTicks == 0 ? 0 : Double(cryWindowsAnalysed) / Double(analysisTicks) }

    /// p50 and p99 of the last 512 per-window inference times (cry detector + reason CRNN), in milliseconds.
    public var inferenceLatencyMilliseconds: (p50: Double, p99: Double)? {
        let n = min(latencyCount, latencies.count)
        guard n > 0 else { return nil }
        let sorted = latencies[0..<n].sorted()
        return (sorted[n / 2] * 1000, sorted[min(n - 1, Int(Double(n) * 0.99))] * 1000)
    }

    /// The old spelling: a CRNN cry detector.
    public convenience init(cryModel: ModelBundle, reasonModel: ModelBundle, settings: GateSettings = GateSettings()) throws {
        try self.init(detector: .crnn(cryModel), reasonModel: reasonModel, settings: settings)
    }

    public init(detector model: CryDetectorModel, reasonModel: ModelBundle, settings: GateSettings = GateSettings()) throws {
        try settings.validate()
        self.settings = settings
        self.detectorModel = model
        self.reasonModel = reasonModel
        featureParameters = reasonModel.metadata.features.logMelParameters
        switch model {
        case let .crnn(cry):
            guard cry.metadata.features.logMelParameters == featureParameters else {
                throw GateError.incompatibleModels("cry and reason models use different features")
            }
            detector = try CRNNCryDetector(model: cry, settings: settings)
        case let .yamnet(body, head):
            detector = try YAMNetCryDetector(body: body, head: head, settings: settings)
        }
        extractor = try LogMelExtractor(parameters: featureParameters)
        windowFrames = reasonModel.metadata.window.frames
        reasonEngine = CRNNEngine(model: reasonModel, maxFrames: windowFrames)
        activity = ActivityDetector(marginDB: settings.activityMarginDB, minDBFS: settings.activityMinDBFS)
        tracker = EpisodeTracker(settings: Self.trackerSettings(settings, model), labels: reasonModel.labels,
                                 windowSeconds: detector.windowSeconds, defaultThreshold: model.recommendedThreshold)
        recent = []
        recent.reserveCapacity(2 * windowFrames * featureParameters.nMels)
        features = FeatureMatrix(nMels: featureParameters.nMels)
        features.values.reserveCapacity(64 * featureParameters.nMels)
        reasonLog = [Float](repeating: 0, count: reasonModel.labels.count)
    }

    /// The tracker counts "windows"; for the YAMNet detector those are patches.
    static func trackerSettings(_ s: GateSettings, _ model: CryDetectorModel) -> GateSettings {
        var t = s
        if case .yamnet = model { t.minCryWindows = s.minCryPatches }
        return t
    }

    /// The embedding of the latest scored patch (YAMNet detector), for caregiver feedback.
    public var lastEmbedding: [Float]? { detector.lastEmbedding }

    /// The evidence of episodes that ended since the last call (for the feedback store), oldest first.
    public func takeFinishedEvidence() -> [EpisodeEvidence] { evidence.takeFinished() }

    /// The evidence of the open episode so far.
    public var openEvidence: EpisodeEvidence? { evidence.open }

    /// The id of the open episode, if any.
    public var currentEpisode: UUID? { tracker.currentEpisode }

    public var isCrying: Bool { tracker.isCrying }
    /// The cry threshold in force.
    public var cryThreshold: Double { tracker.threshold }
    public var labels: [String] { reasonModel.labels }

    /// Applies new settings between windows (remote config); an open episode continues.
    public func update(settings new: GateSettings) throws {
        try new.validate()
        settings = new
        tracker.settings = Self.trackerSettings(new, detectorModel)
        activity.marginDB = new.activityMarginDB
        activity.minDBFS = new.activityMinDBFS
        detector.update(settings: new)
    }

    /// Swaps the reason model between windows. Labels may change, so an open episode is closed first
    /// (its end event is returned) and the next cry opens a new one: no window is lost or counted twice.
    public func swapReasonModel(_ model: ModelBundle) throws -> [GateEvent] {
        guard model.metadata.features.logMelParameters == featureParameters, model.metadata.architecture.nMels == featureParameters.nMels else {
            throw GateError.incompatibleModels("reason model features differ from the running front end's")
        }
        var events: [GateEvent] = []
        if tracker.isCrying { events = endEpisode() }
        reasonModel = model
        reasonEngine = CRNNEngine(model: model, maxFrames: windowFrames)
        reasonLog = [Float](repeating: 0, count: model.labels.count)
        tracker = EpisodeTracker(settings: settings, labels: model.labels, windowSeconds: tracker.windowSeconds,
                                 defaultThreshold: tracker.defaultThreshold)
        return events
    }

    /// Swaps the cry detector's models between chunks (a new cry head or YAMNet body; the kind stays:
    /// changing `gate.detector` is a restart). An open episode is closed first, as for a reason model, so
    /// every episode is judged by one detector and one threshold from start to end.
    public func swapCryDetector(_ model: CryDetectorModel) throws -> [GateEvent] {
        guard model.kind == detectorModel.kind else {
            throw GateError.incompatibleModels("the node runs the \(detectorModel.kind) detector; a \(model.kind) model needs gate.detector = \"\(model.kind)\" and a restart")
        }
        let next: any CryDetector
        switch model {
        case let .crnn(cry):
            guard cry.metadata.features.logMelParameters == featureParameters else {
                throw GateError.incompatibleModels("cry model features differ from the reason model's")
            }
            next = try CRNNCryDetector(model: cry, settings: settings)
        case let .yamnet(body, head):
            next = try YAMNetCryDetector(body: body, head: head, settings: settings)
        }
        var events: [GateEvent] = []
        if tracker.isCrying { events = endEpisode() }
        detector = next
        detectorModel = model
        tracker = EpisodeTracker(settings: Self.trackerSettings(settings, model), labels: reasonModel.labels,
                                 windowSeconds: next.windowSeconds, defaultThreshold: model.recommendedThreshold)
        return events
    }

    /// Feeds a chunk of 16 kHz mono audio; returns the events it caused, in order.
    public func process(_ samples: [Float], startIndex: Int64, timestamp: Date) -> [GateEvent] {
        if baseDate == nil { baseDate = timestamp.addingTimeInterval(-Double(startIndex) / 16_000) }
        let chunkStart = Double(startIndex) / 16_000
        var events: [GateEvent] = []
        samples.withUnsafeBufferPointer { buf in
            _ = activity.process(buf, startTime: chunkStart)
            for x in buf { levelEnergy += Double(x * x) }
            levelCount += buf.count
            features.values.removeAll(keepingCapacity: true)
            extractor.process(buf, into: &features)
        }
        streamTime = chunkStart + Double(samples.count) / 16_000
        appendFrames(&events)
        let points = samples.withUnsafeBufferPointer { detector.append($0, startSample: startIndex) }
        for t in points { analyse(at: t, &events) }
        if Double(levelCount) / 16_000 >= settings.levelIntervalSeconds {
            events.append(.level(dbfs: (SoundLevel.dbfs(meanSquare: levelEnergy / Double(levelCount)) * 10).rounded() / 10,
                                 at: date(at: streamTime), streamTime: streamTime))
            levelEnergy = 0
            levelCount = 0
        }
        return events
    }

    /// Ends the input: analyses what is left and closes an open episode.
    public func finish() -> [GateEvent] {
        var events: [GateEvent] = []
        features.values.removeAll(keepingCapacity: true)
        extractor.finish(into: &features)
        appendFrames(&events)
        if let t = detector.finish() { analyse(at: t, &events) }
        events += endEpisode()
        return events
    }

    /// Ends the open episode now (input end, model swap), evidence included.
    private func endEpisode() -> [GateEvent] {
        let ended = tracker.end(at: streamTime, date: date(at: streamTime))
        evidence.observe(ended, windowSeconds: detector.windowSeconds)
        return ended
    }

    private func date(at t: Double) -> Date { (baseDate ?? Date()).addingTimeInterval(t) }

    private func appendFrames(_ events: inout [GateEvent]) {
        let nMels = featureParameters.nMels
        for f in 0..<features.frames {
            recent.append(contentsOf: features.frame(f))
            if recent.count > 2 * windowFrames * nMels { recent.removeFirst(recent.count - windowFrames * nMels) }
            totalFrames += 1
            if detector.reasonFrameAppended(totalFrames: totalFrames) { analyse(at: frameTime, &events) }
        }
    }

    /// Stream time (s) at which the newest frame's audio ends (its centre + n_fft/2): the end of the
    /// analysis window, which events are stamped with.
    private var frameTime: Double {
        Double((totalFrames - 1) * featureParameters.hopLength + featureParameters.nFFT / 2) / Double(featureParameters.sampleRate)
    }

    /// One analysis point: the detector's window ending at `t`, then the reason CRNN if it is a cry.
    private func analyse(at t: Double, _ events: inout [GateEvent]) {
        let nMels = featureParameters.nMels
        let hopSeconds = Double(featureParameters.hopLength) / Double(featureParameters.sampleRate)
        let recentFrames = recent.count / nMels
        // Before an episode, look only at the audio since activity began (plus a quarter second): a cry
        // that has just started then fills the window instead of being diluted by the quiet before it,
        // which brings the start event ~1 s closer to the onset (CRNN; a YAMNet patch has a fixed size).
        var limit: Int?
        if !tracker.isCrying, let since = activity.activeSince {
            limit = max(16, Int(((t - since) / hopSeconds).rounded(.up)) + 8)
        }
        let windowStart = t - min(detector.windowSeconds, Double(limit ?? Int.max / 2) * hopSeconds)
        // Stage 2 only if stage 1 saw activity inside this window, or while an episode is open (so a long
        // cry that the floor starts to absorb is still followed to its end).
        let active = activity.lastActive >= windowStart || tracker.isCrying
        var window = EpisodeTracker.Window(time: t, date: date(at: t), cryProbability: 0, reasonLogProbabilities: nil,
                                           seconds: detector.windowSeconds)
        if active {
            let started = DispatchTime.now().uptimeNanoseconds
            var scored = false
            recent.withUnsafeBufferPointer { all in
                guard let (p, seconds) = detector.score(end: t, recent: all, recentFrames: recentFrames, limitFrames: limit) else { return }
                scored = true
                cryWindowsAnalysed += 1
                window.cryProbability = p
                window.seconds = seconds
                if p >= tracker.threshold, let embedding = detector.lastEmbedding {
                    let vetoed = veto.map { v in embedding.withUnsafeBufferPointer { v.vetoes(embedding: $0, probability: p) } } ?? false
                    evidence.cryPatch(time: t, probability: p, embedding: embedding, vetoed: vetoed)
                    if vetoed {
                        vetoedPatches += 1
                        window.cryProbability = 0
                        return
                    }
                }
                if p >= tracker.threshold, recentFrames >= reasonEngine.minFrames {
                    let frames = min(windowFrames, recentFrames, limit ?? windowFrames)
                    let slice = UnsafeBufferPointer(rebasing: all[(recentFrames - max(frames, reasonEngine.minFrames)) * nMels..<recentFrames * nMels])
                    reasonLog.withUnsafeMutableBufferPointer { out in try? reasonEngine.logProbabilities(features: slice, frames: max(frames, reasonEngine.minFrames), into: out) }
                    reasonWindowsAnalysed += 1
                    window.reasonLogProbabilities = reasonLog.map(Double.init)
                }
            }
            if scored {
                latencies[latencyCount % latencies.count] = Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9
                latencyCount += 1
            } else if detector.usesReasonFrames {
                return  // too few frames yet for the CRNN: no tick (as before)
            }
        }
        analysisTicks += 1
        // A quiet window costs no inference; it still resets a pending onset and advances the hang-over.
        let caused = tracker.add(window)
        evidence.observe(caused, windowSeconds: detector.windowSeconds)
        events += caused
    }
}

public enum GateError: Error, Equatable, CustomStringConvertible {
    case incompatibleModels(String)
    public var description: String {
        switch self { case let .incompatibleModels(why): "incompatible models: \(why)" }
    }
}
