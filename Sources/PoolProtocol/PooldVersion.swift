/// The version every component reports: the daemon, its workers, poolctl and the varlink service.
public enum PooldVersion {
    public static let string = "0.1.0"
}
