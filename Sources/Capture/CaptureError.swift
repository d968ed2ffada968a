/// Errors of the capture stage, with messages that name the device or file.
public enum CaptureError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(device: String, reason: String)
    case unsupportedDevice(device: String, reason: String)
    case readFailed(device: String, reason: String)
    case cannotReadFile(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(device, reason): "cannot open ALSA capture device '\(device)': \(reason)"
        case let .unsupportedDevice(device, reason): "ALSA device '\(device)' cannot capture audio we can use: \(reason)"
        case let .readFailed(device, reason): "reading from ALSA device '\(device)' failed: \(reason)"
        case let .cannotReadFile(path, reason): "cannot read audio file '\(path)': \(reason)"
        }
    }
}
