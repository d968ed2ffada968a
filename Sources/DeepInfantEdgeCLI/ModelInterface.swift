import Crypto
import Gate
import Inference

/// What an app author needs to feed a model and read its answer, outside the node (ONNX, Core ML,
/// training/frontend_reference.py; docs/front-end.md): input, output and how the node turns outputs into
/// an answer. Derived from the model file's metadata and the gate's defaults, never written by hand.
struct ModelInterface {
    var input: [String: Any]
    var output: [String: Any]
    var lines: [String]

    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    static func of(_ model: AnyModel) -> ModelInterface {
        let gate = GateSettings()
        switch model {
        case let .crnn(m):
            let meta = m.metadata, f = meta.features, w = meta.window, a = meta.architecture
            let minFrames = a.minimumFrames
            let input: [String: Any] = [
                "name": "log_mel", "dtype": "float32", "shape": [w.frames, a.nMels],
                "frames": ["window": w.frames, "minimum": minFrames, "hop": w.hopFrames],
                "values": "log-mel power in dB (librosa power_to_db, ref \(f.dbRef), amin \(f.dbAmin), no top_db) of a \(f.nFft)-point STFT, hop \(f.hopLength), \(f.sampleRate) Hz, \(f.nMels) Slaney mels \(f.fmin)-\(f.fmax) Hz",
                "normalisation": ["applied_by": "model", "mean": f.normMean, "std": f.normStd],
            ]
            var output: [String: Any] = ["name": "probabilities", "labels": meta.labels, "activation": "softmax",
                                         "aggregation": meta.aggregation]
            if meta.task == "cry" {
                output["threshold"] = meta.gate?.threshold ?? gate.cryThreshold ?? 0.5
                output["episode"] = "\(gate.minCryWindows) windows in a row at or above the threshold start an episode"
            } else {
                output["unknown_below"] = gate.reasonMinConfidence
            }
            let rule = meta.task == "cry"
                ? "p(cry) >= \(output["threshold"]!) in \(gate.minCryWindows) windows in a row starts an episode"
                : "windows of \(w.frames) frames every \(w.hopFrames) (a shorter recording: one window of all its frames, at least \(minFrames)); \(meta.aggregation) over windows; top label, or unknown below \(gate.reasonMinConfidence)"
            return ModelInterface(input: input, output: output, lines: [
                "input:        log_mel float32 [\(w.frames), \(a.nMels)] raw dB (normalised inside: (x - \(f.normMean)) / \(f.normStd)); \(minFrames)...\(w.frames) frames accepted",
                "output:       softmax probabilities over \(meta.labels.joined(separator: ", "))",
                "answer:       \(rule)",
            ])
        case let .yamnet(m):
            let f = m.metadata.features, a = m.metadata.architecture
            let samples = (f.patchFrames - 1) * f.hopLength + f.windowLength
            let input: [String: Any] = [
                "name": "waveform", "dtype": "float32", "shape": [samples], "sample_rate": f.sampleRate,
                "values": "mono samples in [-1, 1]; patches of \(f.patchFrames) frames every \(f.patchHopFrames) frames (the gate: every \(gate.patchHopSeconds) s)",
                "front_end": ["window_length": f.windowLength, "hop": f.hopLength, "n_fft": f.nFft, "n_mels": f.nMels,
                              "fmin": f.fmin, "fmax": f.fmax, "window": f.window, "magnitude": f.magnitude, "htk": f.melHtk, "log_offset": f.logOffset],
            ]
            let output: [String: Any] = ["embedding": ["dim": a.embeddingDim, "pooling": "mean"],
                                         "scores": ["classes": a.nClasses, "activation": "sigmoid"]]
            return ModelInterface(input: input, output: output, lines: [
                "input:        waveform float32 [\(samples)] (\(String(format: "%.3f", Double(samples) / Double(f.sampleRate))) s at \(f.sampleRate) Hz, mono, [-1, 1]); log-mel patch \(f.patchFrames)x\(f.nMels) computed inside",
                "output:       embedding [\(a.embeddingDim)] (mean pool) and \(a.nClasses) AudioSet scores (sigmoid)",
            ])
        case let .head(m):
            let meta = m.metadata
            let threshold = meta.gate?.threshold ?? gate.cryThreshold ?? 0.5
            let input: [String: Any] = ["name": "embedding", "dtype": "float32", "shape": [meta.architecture.inputDim],
                                        "values": "a raw \(meta.body.name) \(meta.body.version) patch embedding",
                                        "normalisation": ["applied_by": "model", "kind": "standardise (e - mean) * scale"]]
            let output: [String: Any] = ["name": "probabilities", "labels": meta.labels, "activation": "softmax", "threshold": threshold,
                                         "episode": "\(gate.minCryPatches) patches in a row (every \(gate.patchHopSeconds) s) at or above the threshold start an episode"]
            return ModelInterface(input: input, output: output, lines: [
                "input:        embedding float32 [\(meta.architecture.inputDim)] raw from \(meta.body.name) (standardised inside)",
                "output:       softmax probabilities over \(meta.labels.joined(separator: ", "))",
                "answer:       p(cry) >= \(threshold) in \(gate.minCryPatches) patches in a row (every \(gate.patchHopSeconds) s) starts an episode",
            ])
        }
    }
}
