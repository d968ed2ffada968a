/// The CRNN's weights as the engine uses them, built once at load from the file's tensors: batch norm
/// folded into the convolution (so a conv block is one matrix product + bias + ReLU + max-pool), the two
/// LSTM biases summed. Immutable, so one `CRNNWeights` can back any number of engines.
public struct CRNNWeights: Sendable {
    /// Conv 3×3 (padding 1) with batch norm folded in: `weight` is `[cout][cin * 9]` (im2col order
    /// `ci * 9 + ky * 3 + kx`), `bias[c] = (conv_bias - mean) * s + beta` with `s = gamma / sqrt(var + eps)`.
    struct Conv: Sendable {
        var cin: Int
        var cout: Int
        var weight: [Float]
        var bias: [Float]
        /// Winograd-transformed `weight` (`WinogradConv`), for layers with `cin >= winogradMinInput`.
        var winograd: [Float]?
    }

    /// Layers with fewer input channels (the first, with 1) use im2col: their matrix products would
    /// have K = cin, too small for Winograd's 16 products to pay off.
    static let winogradMinInput = 8

    /// One LSTM layer, PyTorch gate order i, f, g, o.
    struct LSTMLayer: Sendable {
        var input: Int
        var hidden: Int
        /// `[4H][input]`
        var weightIH: [Float]
        /// `[4H][H]`
        var weightHH: [Float]
        /// `bias_ih + bias_hh`, `[4H]`
        var bias: [Float]
    }

    /// `y = W x + b`, `weight` `[out][in]`.
    struct Linear: Sendable {
        var input: Int
        var output: Int
        var weight: [Float]
        var bias: [Float]
    }

    var convs: [Conv]
    var lstm: [LSTMLayer]
    var dense: [Linear]
    var out: Linear
    var meanPooling: Bool

    /// PyTorch's BatchNorm2d default.
    static let batchNormEpsilon = 1e-5

    /// Checks the file's tensor set and shapes against `arch` and builds the folded weights.
    /// Every tensor except `selftest.input` must be consumed; finite values are required.
    init(file: SafeTensorsFile, arch: ModelMetadata.Architecture) throws(ModelError) {
        var used: Set<String> = []
        func tensor(_ name: String, _ shape: [Int], optional: Bool = false) throws(ModelError) -> [Float]? {
            guard let info = file.tensors[name] else {
                if optional { return nil }
                throw .missingTensor(name: name)
            }
            guard info.dtype == "F32" else { throw .unsupportedDType(tensor: name, dtype: info.dtype) }
            guard info.shape == shape else { throw .shapeMismatch(tensor: name, expected: shape, actual: info.shape) }
            used.insert(name)
            let v = try file.floats(name)
            if let bad = v.firstIndex(where: { !$0.isFinite }) { throw .nonFiniteWeight(tensor: name, index: bad) }
            return v
        }
        func required(_ name: String, _ shape: [Int]) throws(ModelError) -> [Float] {
            try tensor(name, shape)!
        }

        var convs: [Conv] = []
        var cin = 1
        for (i, cout) in arch.convChannels.enumerated() {
            let p = "blocks.\(i)."
            let w = try required(p + "conv.weight", [cout, cin, 3, 3])
            let convBias = try tensor(p + "conv.bias", [cout], optional: true)
            let gamma = try required(p + "bn.weight", [cout])
            let beta = try required(p + "bn.bias", [cout])
            let mean = try required(p + "bn.running_mean", [cout])
            let variance = try required(p + "bn.running_var", [cout])
            if let bad = variance.firstIndex(where: { $0 < 0 }) { throw .nonFiniteWeight(tensor: p + "bn.running_var", index: bad) }
            var fw = [Float](repeating: 0, count: cout * cin * 9)
            var fb = [Float](repeating: 0, count: cout)
            for c in 0..<cout {
                // Fold in double precision: the folded weights then round once, like PyTorch's fp32 math.
                let s = Double(gamma[c]) / (Double(variance[c]) + Self.batchNormEpsilon).squareRoot()
                for j in 0..<(cin * 9) { fw[c * cin * 9 + j] = Float(Double(w[c * cin * 9 + j]) * s) }
                fb[c] = Float((Double(convBias?[c] ?? 0) - Double(mean[c])) * s + Double(beta[c]))
            }
            for (j, v) in fw.enumerated() where !v.isFinite { throw .nonFiniteWeight(tensor: p + "conv.weight (folded)", index: j) }
            let wino = cin >= Self.winogradMinInput ? WinogradConv.transformWeights(fw, cout: cout, cin: cin) : nil
            convs.append(Conv(cin: cin, cout: cout, weight: fw, bias: fb, winograd: wino))
            cin = cout
        }

        let h = arch.lstmHidden
        var layers: [LSTMLayer] = []
        for k in 0..<arch.lstmLayers {
            let input = k == 0 ? arch.lstmInput : h
            let wih = try required("lstm.weight_ih_l\(k)", [4 * h, input])
            let whh = try required("lstm.weight_hh_l\(k)", [4 * h, h])
            let bih = try required("lstm.bias_ih_l\(k)", [4 * h])
            let bhh = try required("lstm.bias_hh_l\(k)", [4 * h])
            layers.append(LSTMLayer(input: input, hidden: h, weightIH: wih, weightHH: whh,
                                    bias: zip(bih, bhh).map { $0 + $1 }))
        }

        var dense: [Linear] = []
        var width = h
        for (j, d) in arch.dense.enumerated() {
            let w = try required("dense.\(j).weight", [d, width])
            let b = try required("dense.\(j).bias", [d])
            dense.append(Linear(input: width, output: d, weight: w, bias: b))
            width = d
        }
        let ow = try required("out.weight", [arch.nClasses, width])
        let ob = try required("out.bias", [arch.nClasses])

        used.insert("selftest.input")
        if let extra = file.tensors.keys.sorted().first(where: { !used.contains($0) }) {
            throw .unexpectedTensor(name: extra)
        }
        self.convs = convs
        self.lstm = layers
        self.dense = dense
        self.out = Linear(input: width, output: arch.nClasses, weight: ow, bias: ob)
        self.meanPooling = arch.pooling == "mean"
    }
}
