import Logging
import Synchronization

/// The process-wide log level, changeable while running (`cmd/config {"log": {"level": "debug"}}`).
///
/// swift-log asks the handler for its level on every log call, so a handler whose level reads this
/// value changes every logger at once. `run` installs it with ``bootstrap(level:)``; where it is not
/// installed (tests, embedders with their own logging), a `log.level` change waits for a restart.
public enum LiveLogLevel {
    private static let state = Mutex<(level: Logger.Level, installed: Bool)>((.info, false))

    public static var level: Logger.Level { state.withLock { $0.level } }
    public static var isInstalled: Bool { state.withLock { $0.installed } }

    public static func set(_ level: Logger.Level) { state.withLock { $0.level = level } }

    /// `LoggingSystem.bootstrap` with standard-error handlers that follow ``level``.
    public static func bootstrap(level: Logger.Level) {
        state.withLock { $0 = (level, true) }
        LoggingSystem.bootstrap { label in Handler(base: StreamLogHandler.standardError(label: label)) }
    }

    /// A handler that logs through `base` at the live level.
    public struct Handler: LogHandler {
        var base: StreamLogHandler

        public init(base: StreamLogHandler) { self.base = base }

        public var logLevel: Logger.Level {
            get { LiveLogLevel.level }
            set { LiveLogLevel.set(newValue) }
        }

        public var metadata: Logger.Metadata {
            get { base.metadata }
            set { base.metadata = newValue }
        }

        public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { base[metadataKey: key] }
            set { base[metadataKey: key] = newValue }
        }

        public var metadataProvider: Logger.MetadataProvider? {
            get { base.metadataProvider }
            set { base.metadataProvider = newValue }
        }

        public func log(event: LogEvent) { base.log(event: event) }
    }
}
