-- tshark Lua listener used by make.sh: the same tcp/udp tap records that tshark's own
-- "-z conv,tcp" / "-z conv,udp" tables are built from (address, port and stream index from the tap
-- structure, bytes = pinfo.len = frame.len), but printed with exact byte counts, because tshark 4.0
-- prints conversation bytes >= 10000 as rounded "NN kB" / "NN MB".
-- One line per tap record:  TAP <proto> <stream> <frame> <frame.len> <src> <sport> <dst> <dport>
local function listen(proto, sport, dport, stream)
    local l = Listener.new(proto)
    function l.packet(pinfo, tvb, t)
        print(string.format("TAP\t%s\t%d\t%d\t%d\t%s\t%d\t%s\t%d", proto, t[stream], pinfo.number, pinfo.len,
            tostring(t.ip_src), t[sport], tostring(t.ip_dst), t[dport]))
    end
end
listen("tcp", "th_sport", "th_dport", "th_stream")
listen("udp", "uh_sport", "uh_dport", "uh_stream")
