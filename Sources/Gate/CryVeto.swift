/// The seam for what a home has taught its node: a patch the cry head scored as a cry, which the home's
/// feedback says is a sound it knows to be something else (the family cat). The gate asks only about
/// patches at or above the threshold; a vetoed patch counts as not a cry. Implemented by the Feedback
/// module's `HomeVeto`; called from the pipeline's task, a few times a second while there is sound.
public protocol CryVeto: AnyObject, Sendable {
    func vetoes(embedding: UnsafeBufferPointer<Float>, probability: Double) -> Bool
}
