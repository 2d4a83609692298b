#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The system's user and group database (`/etc/passwd`, `/etc/group`, or whatever NSS serves),
/// read with the reentrant calls: the control server's thread must not race other threads on
/// the static buffers of `getpwuid` / `getgrnam`.
public enum UserDatabase {
    /// The peer behind `credentials`: its user name and every group it is a member of. The
    /// groups come from the user database, not the connecting process, so a user added to a
    /// group counts at once, without logging in again.
    static func peer(_ credentials: UnixSocket.Credentials) -> ControlPeer {
        let user = user(uid: credentials.uid)
        var groups = user.map { groupIDs(of: $0.name, primary: $0.gid) } ?? []
        if !groups.contains(credentials.gid) { groups.append(credentials.gid) }
        return ControlPeer(
            uid: credentials.uid, gid: credentials.gid, pid: credentials.pid, userName: user?.name, groupIDs: groups)
    }

    /// The user name and primary group of `uid`; nil without an entry.
    public static func user(uid: UInt32) -> (name: String, gid: UInt32)? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        let status = getpwuid_r(uid_t(uid), &entry, &buffer, buffer.count, &found)
        guard status == 0, found != nil, let name = entry.pw_name else { return nil }
        return (String(cString: name), UInt32(entry.pw_gid))
    }

    /// Every group `user` is a member of, `primary` included.
    static func groupIDs(of user: String, primary: UInt32) -> [UInt32] {
        var count: Int32 = 64
        while true {
            var groups = [gid_t](repeating: 0, count: Int(count))
            var asked = count
            if getgrouplist(user, gid_t(primary), &groups, &asked) >= 0 {
                return groups.prefix(Int(asked)).map { UInt32($0) }
            }
            // Too small: `asked` now holds the number needed.
            guard asked > count, asked < 65_536 else { return [primary] }
            count = asked
        }
    }

    /// The gid of the group `name`; nil when no such group exists here.
    public static func groupID(named name: String) -> UInt32? {
        var entry = group()
        var found: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 64 * 1024)
        let status = getgrnam_r(name, &entry, &buffer, buffer.count, &found)
        guard status == 0, found != nil else { return nil }
        return UInt32(entry.gr_gid)
    }
}
