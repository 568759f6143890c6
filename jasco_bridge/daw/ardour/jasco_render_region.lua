ardour {
	["type"]    = "EditorAction",
	name        = "Render selected MIDI region with JASCO",
	author      = "jasco-bridge",
	description = [[
Renders the bars of the selected MIDI region with JASCO (through a running `jasco-bridge serve`)
and places the clip on a "JASCO" audio track, exactly on the region's first bar, as one undoable
step. The region's notes are the chords; the session's tempo map and meters go with them.
Needs `jasco-bridge` installed and `jasco-bridge serve` running (TCP on, the default).
]]
}

-- Bound once per action button: an empty prompt asks each time.
function action_params ()
	return {
		["prompt"]  = { title = "Prompt (empty: ask every time)", default = "" },
		["seed"]    = { title = "Seed (empty: a new one every run)", default = "" },
		["port"]    = { title = "Daemon TCP port", default = "9000" },
		["command"] = { title = "jasco-bridge command", default = "jasco-bridge" },
		["session"] = { title = "Daemon session name", default = "ardour" },
	}
end

function factory (params) return function ()

	local WINDOWS = os.getenv ("OS") == "Windows_NT" -- Ardour's Lua has no `package`
	local SEP = WINDOWS and "\\" or "/"

	local function fail (text)
		LuaDialog.Message ("JASCO", text, LuaDialog.MessageType.Error, LuaDialog.ButtonType.Close):run ()
	end

	-- ---------------------------------------------------------------- JSON (flat, as `request` prints)

	local function json_string (s)
		return '"' .. s:gsub ('[%c"\\]', function (c)
			local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
			return named[c] or string.format ("\\u%04x", c:byte ())
		end) .. '"'
	end

	local function json_number (x)
		if x == math.floor (x) and math.abs (x) < 2^53 then return string.format ("%d", x) end
		return string.format ("%.17g", x)
	end

	local function json_value (v)
		local t = type (v)
		if t == "string" then return json_string (v) end
		if t == "number" then return json_number (v) end
		if t == "boolean" then return tostring (v) end
		if t == "table" then
			if v.__array or v[1] ~= nil then
				local items = {}
				for _, x in ipairs (v) do items[#items + 1] = json_value (x) end
				return "[" .. table.concat (items, ",") .. "]"
			end
			local items = {}
			for k, x in pairs (v) do
				if k ~= "__array" then items[#items + 1] = json_string (k) .. ":" .. json_value (x) end
			end
			return "{" .. table.concat (items, ",") .. "}"
		end
		return "null"
	end

	-- One JSON object of strings, numbers, booleans and nulls per line.
	local function parse_event (line)
		if line:sub (1, 1) ~= "{" then return nil end
		local event, i = {}, 2
		local function skip () i = line:find ("[^%s,]", i) or #line + 1 end
		local function read_string ()
			local out, j = {}, i + 1
			while j <= #line do
				local c = line:sub (j, j)
				if c == '"' then i = j + 1; return table.concat (out) end
				if c == "\\" then
					local e = line:sub (j + 1, j + 1)
					if e == "u" then
						local code = tonumber (line:sub (j + 2, j + 5), 16)
						out[#out + 1] = utf8 and utf8.char (code) or (code < 128 and string.char (code) or "?")
						j = j + 6
					else
						out[#out + 1] = ({ n = "\n", r = "\r", t = "\t", b = "\b", f = "\f" })[e] or e; j = j + 2
					end
				else
					out[#out + 1] = c; j = j + 1
				end
			end
			return nil
		end
		while true do
			skip ()
			if line:sub (i, i) ~= '"' then break end
			local key = read_string ()
			i = line:find (":", i, true) + 1
			skip ()
			local c = line:sub (i, i)
			if c == '"' then
				event[key] = read_string ()
			else
				local raw = line:match ("^[^,}%s]+", i)
				i = i + #raw
				if raw == "true" then event[key] = true
				elseif raw == "false" then event[key] = false
				elseif raw ~= "null" then event[key] = tonumber (raw) end
			end
		end
		return event
	end

	-- ---------------------------------------------------------------- shell quoting

	local function quote (arg)
		if WINDOWS then return '"' .. arg:gsub ('"', '""') .. '"' end
		return "'" .. arg:gsub ("'", "'\\''") .. "'"
	end

	local function command_line (parts)
		local line = table.concat (parts, " ") .. " 2>&1"
		-- cmd.exe drops the first and last quote of a line that starts with one: add a pair.
		if WINDOWS then line = '"' .. line .. '"' end
		return line
	end

	-- ---------------------------------------------------------------- the selected region

	local region
	for r in Editor:get_selection ().regions:regionlist ():iter () do
		if not r:to_midiregion ():isnil () then region = r:to_midiregion (); break end
	end
	if not region then
		fail ("Select a MIDI region with your chords first.")
		return
	end

	local tm = Temporal.TempoMap.read ()
	local TPB = Temporal.ticks_per_beat
	local function quarters (beats) -- Temporal.Beats has no numeric getter in Lua: "B:T"
		local b, t = beats:str ():match ("^(-?%d+):(-?%d+)$")
		return tonumber (b) + tonumber (t) / TPB
	end
	local function at_quarters (q) return Temporal.timepos_t.from_ticks (math.floor (q * TPB + 0.5)) end
	local function bar_start_quarters (bar) return quarters (tm:quarters_at_bbt (Temporal.BBT_TIME (bar, 1, 0))) end

	local start_samples = region:position ():samples ()
	local end_samples = start_samples + region:length ():samples ()
	local region_start_q = quarters (region:position ():beats ())
	local region_end_q = quarters (Temporal.timepos_t (end_samples):beats ())
	local start_bar = tm:bbt_at (region:position ()).bars
	local end_bar = start_bar
	while bar_start_quarters (end_bar + 1) < region_end_q - 1e-9 do end_bar = end_bar + 1 end
	local bars = end_bar - start_bar + 1

	-- Tempo and meter points are not listed in Lua: probe. Exactly at a point the getters still
	-- give the previous value, so each probe sits one tick after its grid position.
	local function qpm (tempo) return tempo:note_types_per_minute () * 4 / tempo:note_type () end
	local first_tempo = tm:tempo_at (Temporal.timepos_t.from_ticks (1))
	local first_meter = tm:meter_at (Temporal.timepos_t.from_ticks (1))
	local tempo_changes, meter_changes = { __array = true }, { __array = true }
	local last_bpm = qpm (first_tempo)
	local horizon_q = bar_start_quarters (end_bar + 1)
	local step = 0.125
	for k = 1, math.ceil (horizon_q / step) do
		local bpm = qpm (tm:tempo_at (Temporal.timepos_t.from_ticks (math.floor (k * step * TPB) + 1)))
		if math.abs (bpm - last_bpm) > 1e-6 then
			tempo_changes[#tempo_changes + 1] = { beat = k * step, bpm = bpm }
			last_bpm = bpm
		end
	end
	local last_meter = { first_meter:divisions_per_bar (), first_meter:note_value () }
	for bar = 2, end_bar + 1 do
		local q = bar_start_quarters (bar)
		local m = tm:meter_at (Temporal.timepos_t.from_ticks (math.floor (q * TPB + 0.5) + 1))
		local now = { m:divisions_per_bar (), m:note_value () }
		if now[1] ~= last_meter[1] or now[2] ~= last_meter[2] then
			meter_changes[#meter_changes + 1] = { beat = q, numerator = now[1], denominator = now[2] }
			last_meter = now
		end
	end

	-- Notes are timed from the source's start; only those the region shows are sent.
	local source_start_q = quarters (region:start ():beats ())
	local notes = { __array = true }
	for n in ARDOUR.LuaAPI.note_list (region:model ()):iter () do
		local at = quarters (n:time ()) - source_start_q
		if at >= -1e-9 and region_start_q + at < region_end_q - 1e-9 then
			local length = math.min (quarters (n:length ()), region_end_q - region_start_q - at)
			notes[#notes + 1] = {
				start_beat = region_start_q + at, length_beats = length,
				pitch = n:note (), velocity = math.max (1, n:velocity ()),
			}
		end
	end
	if #notes == 0 then
		fail ("The selected region has no notes to take the chords from.")
		return
	end

	-- ---------------------------------------------------------------- the request

	local prompt = params["prompt"] or ""
	if prompt == "" then
		local answer = LuaDialog.Dialog ("Render with JASCO", {
			{ type = "entry", key = "prompt", default = "", title = "Prompt" },
		}):run ()
		if not answer then return end
		prompt = answer["prompt"]
	end
	local settings = { sample_rate = Session:nominal_sample_rate () }
	if (params["seed"] or "") ~= "" then settings.seed = tonumber (params["seed"]) end

	local token = string.format ("ardour-%d-%d", os.time (), math.random (1, 1e9))
	local folder = Session:path () .. (Session:path ():sub (-1) == SEP and "" or SEP) .. "jasco"
	os.execute (WINDOWS and ('mkdir ' .. quote (folder) .. ' 2>nul') or ('mkdir -p ' .. quote (folder)))
	local request_path = folder .. SEP .. token .. ".json"
	local cancel_path = folder .. SEP .. token .. ".cancel"
	local request = {
		session = params["session"] or "ardour",
		tempo = { bpm = qpm (first_tempo), numerator = first_meter:divisions_per_bar (), denominator = first_meter:note_value () },
		tempo_changes = tempo_changes,
		meter_changes = meter_changes,
		notes = notes,
		prompt = prompt,
		start_bar = start_bar,
		bars = bars,
		settings = settings,
		token = token,
	}
	local out = io.open (request_path, "w")
	if not out then
		fail ("Cannot write the request file " .. request_path)
		return
	end
	out:write (json_value (request), "\n")
	out:close ()

	local pipe = io.popen (command_line ({
		params["command"] or "jasco-bridge", "request", quote (request_path),
		"--port", tostring (tonumber (params["port"]) or 9000), "--cancel-file", quote (cancel_path),
	}))
	local progress = LuaDialog.ProgressWindow ("JASCO: bars " .. start_bar .. "-" .. end_bar, true)
	local done, problem, other = nil, nil, {}
	for line in pipe:lines () do
		local event = parse_event (line)
		if not event then
			other[#other + 1] = line
		elseif event.event == "ack" then
			progress:progress (0, "queued (job " .. tostring (event.job) .. ")")
		elseif event.event == "progress" then
			if progress:progress (event.fraction, "rendering") then
				local stop = io.open (cancel_path, "w"); if stop then stop:close () end
			end
		elseif event.event == "done" then
			done = event
		elseif event.event == "error" or event.event == "cancelled" then
			problem = event.message or "the render was cancelled"
		end
	end
	pipe:close ()
	progress:done ()
	os.remove (cancel_path)
	if not done then
		fail ("JASCO render failed: " .. (problem or table.concat (other, "\n")))
		return
	end

	-- ---------------------------------------------------------------- the clip, on its bar

	local pos = Temporal.timepos_t (tm:sample_at_bbt (tm:quarters_at_bbt (Temporal.BBT_TIME (start_bar, 1, 0))))
	local files = C.StringVector ()
	files:push_back (done.path)
	Editor:do_import (files, Editing.ImportDistinctFiles, Editing.ImportAsRegion, ARDOUR.SrcQuality.SrcBest,
		ARDOUR.MidiTrackNameSource.SMFTrackName, ARDOUR.MidiTempoMapDisposition.SMFTempoIgnore,
		pos, ARDOUR.PluginInfo (), ARDOUR.Track (), false)
	local stem = done.path:match ("([^/\\]+)%.[^.]+$")
	local imported
	for _, r in ARDOUR.RegionFactory.regions ():iter () do
		if r:whole_file () and r:name ():sub (1, #stem) == stem then imported = r end
	end
	if not imported then
		fail ("Ardour did not import " .. done.path)
		return
	end

	local route = Session:route_by_name ("JASCO")
	if route:isnil () then
		local created = Session:new_audio_track (1, 2, nil, 1, "JASCO", ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)
		for t in created:iter () do route = t end
	end
	local playlist = route:to_track ():playlist ()
	Session:begin_reversible_command ("JASCO render bars " .. start_bar .. "-" .. end_bar)
	playlist:to_stateful ():clear_changes ()
	playlist:add_region (ARDOUR.RegionFactory.clone_region (imported, true, false), pos, 1, false)
	Session:add_stateful_diff_command (playlist:to_statefuldestructible ())
	Session:commit_reversible_command (nil)
	print (string.format ("JASCO: %s on track JASCO at bar %d (sample %d)", done.path, start_bar, pos:samples ()))

end end
