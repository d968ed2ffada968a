import Agent
import ArgumentParser
import Foundation
import Messaging

/// Broker, credentials and TLS files: the connection options of the commands that talk to nodes
/// through the broker (`fleet`, `ha remove`).
struct BrokerOptions: ParsableArguments {
    @Option(help: "Broker, mqtt://HOST:PORT or mqtts://HOST:PORT.") var broker = "mqtt://127.0.0.1:1883"
    @Option(help: "Broker user name (needs write access to the nodes' command or discovery topics).") var username: String?
    @Option(help: "Broker password (or DEEPINFANT_MQTT_PASSWORD).") var password: String?
    @Option(name: .customLong("ca-file"), help: "CA certificate for mqtts://.") var caFile: String?
    @Option(name: .customLong("cert-file"), help: "Client certificate (TLS).") var certFile: String?
    @Option(name: .customLong("key-file"), help: "Client key (TLS).") var keyFile: String?

    /// Client settings with a random client id under `clientIDPrefix`; the password comes from the
    /// option, then the environment, then the URL.
    func settings(clientIDPrefix: String, backoff: MQTTBackoff = MQTTBackoff()) throws -> MQTTSettings {
        let url = try MQTTSettings.parseBrokerURL(broker)
        if url.secure, caFile == nil { throw CLIError(message: "--ca-file is required for mqtts://") }
        let tls = url.secure ? MQTTTLSSettings(caFile: caFile ?? "", certFile: certFile, keyFile: keyFile) : nil
        return MQTTSettings(host: url.host, port: url.port, clientID: "\(clientIDPrefix)-\(UUID().uuidString.prefix(8).lowercased())",
                            username: username ?? url.username,
                            password: password ?? ProcessInfo.processInfo.environment[ConfigLoader.passwordVariable] ?? url.password,
                            tls: tls, backoff: backoff)
    }
}
