-- lua5.4 tests/daw/reaper_stand_in.lua PROJECT.lua SCRIPT.lua RESULTS.json
--
-- A stand-in for exactly the REAPER API calls the companion script makes, written from REAPER's
-- ReaScript documentation (argument order, return values, 0-based indices and measures):
-- a project with a tempo/time-signature map, tracks and one selected MIDI item is described by
-- PROJECT.lua; SCRIPT.lua runs against it; deferred functions run until none is left, like
-- REAPER's main loop; what the script did (tracks, items, undo points, dialogs, processes) is
-- written to RESULTS.json. Processes really run (ExecProcess starts the command line in the
-- background through /bin/sh), so the script talks to a real daemon.

local project = dofile (arg[1])
local script_path, results_path = arg[2], arg[3]
local PPQ = 960 -- ticks per quarter note of the item's take

local log = { message_boxes = {}, undo = {}, processes = {}, drawn = {}, ext = {} }
local tracks = {}
for _, name in ipairs (project.tracks) do tracks[#tracks + 1] = { name = name, items = {}, selected = false } end
local cursor = 0.0
local undo_depth = 0
local deferred = {}

-- ------------------------------------------------------------------ the tempo map
-- markers: { time = seconds, bpm = quarter notes per minute, num = 0 | n, den = 0 | d }, sorted,
-- the first at time 0. A tempo holds until the next marker (no linear ramps).

local markers = project.markers

local function segment_at_time (t)
	local index = 1
	for i, m in ipairs (markers) do if m.time <= t + 1e-12 then index = i end end
	return index
end

local function qn_at (index)
	local qn = 0.0
	for i = 2, index do qn = qn + (markers[i].time - markers[i - 1].time) * markers[i - 1].bpm / 60 end
	return qn
end

local function time_to_qn (t)
	local i = segment_at_time (t)
	return qn_at (i) + (t - markers[i].time) * markers[i].bpm / 60
end

local function qn_to_time (qn)
	local index = 1
	for i = 1, #markers do if qn_at (i) <= qn + 1e-12 then index = i end end
	return markers[index].time + (qn - qn_at (index)) * 60 / markers[index].bpm
end

-- Meters change only at markers that set one, on bar lines (REAPER moves them there).
local function meters ()
	local out = {}
	for _, m in ipairs (markers) do
		if m.num > 0 then out[#out + 1] = { qn = time_to_qn (m.time), num = m.num, den = m.den } end
	end
	return out
end

-- measure (0-based), its start in quarter notes, and its meter, for a position in quarter notes
local function measure_at (qn)
	local list = meters ()
	local measure, start = 0, 0.0
	for i, m in ipairs (list) do
		local bar = m.num * 4 / m.den
		local limit = list[i + 1] and list[i + 1].qn or math.huge
		if qn < limit - 1e-9 then
			local n = math.floor ((qn - m.qn) / bar + 1e-9)
			return measure + n, m.qn + n * bar, m
		end
		measure = measure + math.floor ((limit - m.qn) / bar + 0.5)
		start = limit
	end
	return measure, start, list[#list]
end

local function measure_start_qn (measure)
	local list = meters ()
	local counted = 0
	for i, m in ipairs (list) do
		local bar = m.num * 4 / m.den
		local limit = list[i + 1] and list[i + 1].qn or math.huge
		local bars_here = (limit == math.huge) and math.huge or math.floor ((limit - m.qn) / bar + 0.5)
		if measure < counted + bars_here then return m.qn + (measure - counted) * bar end
		counted = counted + bars_here
	end
end

-- ------------------------------------------------------------------ the API

local item = project.item
local take = { item = item }
item.take = take
item.track = tracks[project.item_track]

reaper = {}

function reaper.GetOS () return "Other" end
function reaper.GetResourcePath () return project.resource_path end
function reaper.RecursiveCreateDirectory (path, _) os.execute ("mkdir -p '" .. path .. "'"); return 1 end
function reaper.time_precise () return os.time () end
function reaper.defer (fn) deferred[#deferred + 1] = fn end
function reaper.ShowMessageBox (msg, title, _) log.message_boxes[#log.message_boxes + 1] = title .. ": " .. msg; return 1 end
function reaper.GetExtState (section, key) return log.ext[section .. "/" .. key] or "" end
function reaper.SetExtState (section, key, value, _) log.ext[section .. "/" .. key] = value end

function reaper.GetUserInputs (title, count, captions, defaults)
	log.dialog = { title = title, count = count, captions = captions, defaults = defaults }
	if project.answers == nil then return false, defaults end
	return true, project.answers
end

function reaper.GetSelectedMediaItem (proj, index)
	if proj == 0 and index == 0 then return item end
end
function reaper.GetActiveTake (it) return it.take end
function reaper.TakeIsMIDI (tk) return tk == take end
function reaper.GetMediaItemInfo_Value (it, key)
	if key == "D_POSITION" then return it.position end
	if key == "D_LENGTH" then return it.length end
	error ("stand-in: unknown item parameter " .. key)
end

function reaper.MIDI_CountEvts (tk) return 1, #tk.item.notes, 0, 0 end
function reaper.MIDI_GetNote (tk, index)
	local n = tk.item.notes[index + 1]
	-- retval, selected, muted, startppqpos, endppqpos, chan, pitch, vel
	return true, false, n.muted or false, n.start_ppq, n.end_ppq, 0, n.pitch, n.velocity
end
function reaper.MIDI_GetProjQNFromPPQPos (tk, ppq) return time_to_qn (tk.item.position) + ppq / PPQ end

function reaper.CountTempoTimeSigMarkers (proj) return #markers end
function reaper.GetTempoTimeSigMarker (proj, index)
	local m = markers[index + 1]
	local qn = time_to_qn (m.time)
	local measure, start = measure_at (qn)
	-- retval, timepos, measurepos, beatpos, bpm, timesig_num, timesig_denom, lineartempo
	return true, m.time, measure, qn - start, m.bpm, m.num, m.den, false
end
function reaper.TimeMap_GetTimeSigAtTime (proj, t)
	local _, _, meter = measure_at (time_to_qn (t))
	return meter.num, meter.den, markers[segment_at_time (t)].bpm
end
function reaper.TimeMap2_timeToQN (proj, t) return time_to_qn (t) end
function reaper.TimeMap2_QNToTime (proj, qn) return qn_to_time (qn) end
function reaper.TimeMap2_timeToBeats (proj, t)
	local qn = time_to_qn (t)
	local measure, start, meter = measure_at (qn)
	-- retval (beats into the measure), measures, cml, fullbeats, cdenom
	return (qn - start) * meter.den / 4, measure, meter.num, qn, meter.den
end
function reaper.TimeMap2_beatsToTime (proj, tpos, measures)
	local _, _, meter = measure_at (measure_start_qn (measures or 0))
	return qn_to_time (measure_start_qn (measures or 0) + tpos * 4 / meter.den)
end

function reaper.CountTracks (proj) return #tracks end
function reaper.GetTrack (proj, index) return tracks[index + 1] end
function reaper.GetTrackName (track) return true, track.name end
function reaper.InsertTrackAtIndex (index, defaults)
	table.insert (tracks, index + 1, { name = "", items = {}, selected = false })
end
function reaper.GetSetMediaTrackInfo_String (track, key, value, set)
	if key ~= "P_NAME" then error ("stand-in: unknown track string " .. key) end
	if set then track.name = value end
	return true, track.name
end
function reaper.SetOnlyTrackSelected (track)
	for _, t in ipairs (tracks) do t.selected = (t == track) end
end
function reaper.GetCursorPosition () return cursor end
function reaper.SetEditCurPos (t, moveview, seekplay) cursor = t end
function reaper.InsertMedia (path, mode)
	if mode ~= 0 then error ("stand-in: InsertMedia mode " .. mode .. " not modelled") end
	if undo_depth == 0 then error ("stand-in: InsertMedia outside an undo block") end
	for _, t in ipairs (tracks) do
		if t.selected then t.items[#t.items + 1] = { position = cursor, path = path } end
	end
	return 1
end
function reaper.Undo_BeginBlock () undo_depth = undo_depth + 1 end
function reaper.Undo_EndBlock (name, flags)
	undo_depth = undo_depth - 1
	log.undo[#log.undo + 1] = name
end
function reaper.UpdateArrange () end

function reaper.ExecProcess (command, timeout)
	log.processes[#log.processes + 1] = { command = command, timeout = timeout }
	if timeout ~= -1 then error ("stand-in: only the no-wait form (-1) is modelled") end
	os.execute (command .. " >/dev/null 2>&1 &")
	return ""
end

gfx = { w = 0, h = 0, x = 0, y = 0 }
function gfx.init (name, w, h) gfx.w, gfx.h = w, h; log.window = name end
function gfx.set (...) end
function gfx.rect (...) end
function gfx.drawstr (text) log.drawn[#log.drawn + 1] = text end
function gfx.update () end
function gfx.quit () log.window_closed = true end
function gfx.getchar ()
	-- The user closes the window (a cancel) once it shows `close_when`, when the test says so.
	local shown = log.drawn[#log.drawn] or ""
	if project.close_when and shown:find (project.close_when, 1, true) then return -1 end
	return 0
end

-- ------------------------------------------------------------------ run it

dofile (script_path)
local started = os.time ()
while #deferred > 0 do
	if os.time () - started > (project.timeout or 60) then error ("stand-in: still deferring after the timeout") end
	local now = deferred
	deferred = {}
	for _, fn in ipairs (now) do fn () end
	os.execute ("sleep 0.05")
end

local function encode (v)
	local t = type (v)
	if t == "table" then
		local parts = {}
		if #v > 0 or next (v) == nil then
			for _, x in ipairs (v) do parts[#parts + 1] = encode (x) end
			return "[" .. table.concat (parts, ",") .. "]"
		end
		for k, x in pairs (v) do parts[#parts + 1] = string.format ("%q", tostring (k)) .. ":" .. encode (x) end
		return "{" .. table.concat (parts, ",") .. "}"
	end
	if t == "string" then return (string.format ("%q", v):gsub ("\\\n", "\\n")) end
	if t == "number" then return string.format ("%.17g", v) end
	return tostring (v)
end
log.tracks = tracks
for _, t in ipairs (tracks) do t.selected = nil end
log.undo_depth = undo_depth
local out = assert (io.open (results_path, "w"))
out:write (encode (log))
out:close ()
