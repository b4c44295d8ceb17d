import PoolDaemon

/// The configuration file as command-line options: each `key = value` of the `--config` file
/// becomes `--key value` unless the command line has `--key` already. Done before the arguments are
/// parsed, so that a value from the file is checked exactly as one typed (and the file needs no
/// parser of its own for each option).
struct ConfigurationArguments {
    /// The arguments to parse: the command line's, then the file's that it does not override.
    let arguments: [String]
    /// The file and the entries taken from it, for error messages.
    let path: String?
    let taken: [ConfigurationFile.Entry]
    /// The file as read (what a reload compares with), and the options the command line sets.
    var file: ConfigurationFile?
    var commandLineKeys: Set<String> = []

    static func merge(_ commandLine: [String]) throws(ConfigurationFile.Problem) -> ConfigurationArguments {
        guard let path = value(of: "config", in: commandLine) else {
            return ConfigurationArguments(arguments: commandLine, path: nil, taken: [])
        }
        let file = try ConfigurationFile.load(path)
        var arguments = commandLine
        var taken: [ConfigurationFile.Entry] = []
        for key in ConfigurationFile.keys where value(of: key, in: commandLine) == nil {
            guard let entry = file.entries.last(where: { $0.key == key }) else { continue }
            arguments += ["--\(key)", entry.value]
            taken.append(entry)
        }
        return ConfigurationArguments(arguments: arguments, path: path, taken: taken, file: file,
                                      commandLineKeys: Set(ConfigurationFile.keys.filter { value(of: $0, in: commandLine) != nil }))
    }

    /// The value of `--name VALUE` or `--name=VALUE` (the last one), up to a `--`.
    static func value(of name: String, in arguments: [String]) -> String? {
        var found: String?
        var index = 0
        while index < arguments.count, arguments[index] != "--" {
            let argument = arguments[index]
            if argument == "--\(name)" {
                found = index + 1 < arguments.count ? arguments[index + 1] : ""
                index += 1
            } else if argument.hasPrefix("--\(name)=") {
                found = String(argument.dropFirst(name.count + 3))
            }
            index += 1
        }
        return found
    }

    /// Where the options a message may be about came from, when some came from the file.
    var provenance: String? {
        guard let path, !taken.isEmpty else { return nil }
        return "from \(path): " + taken.map { "\($0.key) = \($0.value) (line \($0.line))" }.joined(separator: ", ")
    }
}
