import Logging

/// Fixed journal MESSAGE_IDs for the events an operator looks for; `systemd/poold.catalog`
/// explains each (`journalctl -x`). Attach with `metadata: [MessageID.key: MessageID.jobStarted]`.
public enum MessageID {
    /// The metadata key that carries a message id; log handlers turn it into MESSAGE_ID.
    public static let key = "messageID"

    public static let jobStarted: Logger.MetadataValue = "3d5a17d5df6c48818c5df9e26bb90bc8"
    public static let jobFinished: Logger.MetadataValue = "4e2736b9db6e49708a7adf1dac1f286b"
    public static let jobFailed: Logger.MetadataValue = "12658f1223894221b1f97a89c8bb8a69"
    public static let jobsUnlogged: Logger.MetadataValue = "b0c6a39e4f6d4d2e9a51c7f3e8d21a64"
    public static let workerDied: Logger.MetadataValue = "4c1a8be154c14a6aaeea7baed46ed181"
    public static let workerRespawned: Logger.MetadataValue = "eb4947718afe4edb9e449453eecb619d"
    public static let slotFailed: Logger.MetadataValue = "771a84f070034c61aab1b0ce01b53142"
    public static let workerHung: Logger.MetadataValue = "2ca134619ed6473d86310d37ace50c78"
    public static let staleIPCRemoved: Logger.MetadataValue = "9737477a8198492d947cf7f093ed2bf1"
}
