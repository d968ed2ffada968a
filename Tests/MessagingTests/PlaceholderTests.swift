import Messaging
import Testing

@Test func messagingModuleLinks() { #expect(String(describing: Messaging.self) == "Messaging") }
