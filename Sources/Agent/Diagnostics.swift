import Foundation

/// The agent's health, published retained on `<prefix>/<node>/diagnostics` every
/// `mqtt.diagnostics_interval_s`: enough to see from a dashboard whether a node hears, keeps up, and
/// gets its events out.
public struct Diagnostics: Codable, Sendable, Equatable {
    public var timestamp: Date
    public var uptimeS: Double
    /// Audio analysed since start, and chunks the gate could not keep up with (dropped, counted).
    public var audioSeconds: Double
    public var droppedChunks: Int
    public var overruns: Int
    public var deviceOpens: Int
    public var deviceOpenFailures: Int
    /// Analysis ticks (every `gate.analysis_hop_s`), and how many woke the cry detector / reason model.
    public var analysisTicks: Int
    public var cryWindows: Int
    public var reasonWindows: Int
    public var gateOpenRatio: Double
    /// Per-window inference time (cry + reason CRNN), over the last 512 windows.
    public var inferenceMsP50: Double?
    public var inferenceMsP99: Double?
    public var episodes: Int
    public var outboxPending: Int
    public var outboxDropped: Int
    public var mqttConnectionAttempts: Int
    public var rssMB: Double
    public var peakRSSMB: Double

    enum CodingKeys: String, CodingKey {
        case timestamp, uptimeS = "uptime_s", audioSeconds = "audio_s", droppedChunks = "dropped_chunks", overruns
        case deviceOpens = "device_opens", deviceOpenFailures = "device_open_failures", analysisTicks = "analysis_ticks"
        case cryWindows = "cry_windows", reasonWindows = "reason_windows", gateOpenRatio = "gate_open_ratio"
        case inferenceMsP50 = "inference_ms_p50", inferenceMsP99 = "inference_ms_p99", episodes
        case outboxPending = "outbox_pending", outboxDropped = "outbox_dropped", mqttConnectionAttempts = "mqtt_connection_attempts"
        case rssMB = "rss_mb", peakRSSMB = "peak_rss_mb"
    }
}

public enum ProcessMemory {
    /// Resident set size now (from /proc/self/statm), in MB.
    public static func residentMB() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
    }

    /// Peak resident set size of this process image, in MB: `VmHWM` from /proc/self/status, else getrusage.
    /// (getrusage's ru_maxrss survives exec on Linux: a binary started by a big parent, such as a Python
    /// benchmark script, would report the parent's peak.)
    public static func peakMB() -> Double {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kb = Double(line.split(separator: " ").dropFirst().first ?? "") {
            return kb / 1024
        }
        return maxRSSMB()
    }

    /// getrusage's ru_maxrss, in MB (see `peakMB` for why that may be the parent's).
    public static func maxRSSMB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
