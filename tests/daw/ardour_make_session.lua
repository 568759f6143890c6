-- ardour7-lua tests/daw/ardour_make_session.lua DIR NAME
-- A 48 kHz session: 120 bpm 4/4, 90 bpm from bar 3; a "Chords" MIDI track with one region on
-- bars 2-3 (C major, then F major). Prints Ardour's own sample position of bars 1-5.
local dir, name = arg[1], arg[2]
assert (create_session (dir, name, 48000), "create_session failed")

local tm = Temporal.TempoMap.fetch_writable ()
tm:set_tempo (Temporal.Tempo (120, 120, 4), Temporal.timepos_t (0))
tm:set_meter (Temporal.Meter (4, 4), Temporal.timepos_t (0))
tm:set_tempo (Temporal.Tempo (90, 90, 4), Temporal.timepos_t.from_ticks (8 * Temporal.ticks_per_beat))
Temporal.TempoMap.update (tm)

local midi = ARDOUR.ChanCount (ARDOUR.DataType ("midi"), 1)
Session:new_midi_track (midi, midi, true, ARDOUR.PluginInfo (), nil, nil,
	1, "Chords", ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)
local track = Session:route_by_name ("Chords"):to_track ()
-- No region factory is bound in Lua: bouncing an empty MIDI track gives an empty region.
-- 224000 samples = bars 2-3 (2 s at 120 bpm + 8/3 s at 90 bpm).
local region = track:bounce_range (0, 224000, ARDOUR.InterThreadInfo (), ARDOUR.LuaAPI.nil_proc (), false, "chords")
local model = region:to_midiregion ():model ()
local diff = model:new_note_diff_command ("chords")
for _, n in ipairs ({ { 0, 4, 60 }, { 0, 4, 64 }, { 0, 4, 67 }, { 4, 4, 65 }, { 4, 4, 69 }, { 4, 4, 72 } }) do
	diff:add (ARDOUR.LuaAPI.new_noteptr (0, Temporal.Beats.from_double (n[1]), Temporal.Beats.from_double (n[2]), n[3], 100))
end
model:apply_diff_command_as_commit (Session, diff)
track:playlist ():add_region (region, Temporal.timepos_t.from_ticks (4 * Temporal.ticks_per_beat), 1, false)

local map = Temporal.TempoMap.read ()
for bar = 1, 5 do
	print (string.format ("bar %d %d", bar, map:sample_at_bbt (map:quarters_at_bbt (Temporal.BBT_TIME (bar, 1, 0)))))
end
assert (Session:save_state ("", false, false, false, false, false) == 0, "save_state failed")
