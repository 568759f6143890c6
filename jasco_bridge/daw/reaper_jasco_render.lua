--[[
jasco-bridge companion script for REAPER (ReaScript, Lua).

Select one MIDI item holding your chord part, run this action, type a prompt, and the JASCO clip
for the item's bars is rendered by `jasco-bridge serve` and inserted on the selected track at the
item's first bar when it is ready.

What it sends (see docs/osc.md): the project's tempo map (/jasco/tempo, /jasco/tempo/change,
/jasco/meter/change), the item's notes in quarter notes from the project start in one
/jasco/chords/notes message, /jasco/prompt, and /jasco/render <first bar> <bars>.

Setup (Linux or macOS):
  1. install liblo-tools (oscsend, oscdump): `apt install liblo-tools` / `brew install liblo`
  2. start the daemon with a reply port this script listens on:
       jasco-bridge serve --port 9000 --reply-port 9001
  3. Actions > Show action list > New action > Load ReaScript... > this file.

REAPER's Lua has no sockets, so the script sends with `oscsend` and reads the replies that
`oscdump` writes to a temporary file, polling it with reaper.defer (REAPER never freezes).
The project's time 0 is taken as beat 0 of the song.
]]

local HOST, PORT, REPLY_PORT = "127.0.0.1", 9000, 9001
local WAIT_SECONDS = 900
local SECTION = "jasco_bridge"

local function shell_quote(text)
  return "'" .. tostring(text):gsub("'", "'\\''") .. "'"
end

local function send(address, types, ...)
  local parts = { "oscsend", HOST, tostring(PORT), address }
  if types and #types > 0 then
    parts[#parts + 1] = types
    for _, value in ipairs({ ... }) do
      parts[#parts + 1] = shell_quote(value)
    end
  end
  os.execute(table.concat(parts, " "))
end

local function send_tempo_map()
  local markers = reaper.CountTempoTimeSigMarkers(0)
  if markers == 0 then
    local num, den, bpm = reaper.TimeMap_GetTimeSigAtTime(0, 0)
    send("/jasco/tempo", "fii", bpm, num, den)
    return
  end
  for i = 0, markers - 1 do
    local _, time, _, _, bpm, num, den = reaper.GetTempoTimeSigMarker(0, i)
    local beat = reaper.TimeMap2_timeToQN(0, time)
    if i == 0 then
      local first_num, first_den = reaper.TimeMap_GetTimeSigAtTime(0, time)
      send("/jasco/tempo", "fii", bpm, num > 0 and num or first_num, den > 0 and den or first_den)
    else
      send("/jasco/tempo/change", "ff", beat, bpm)
      if num > 0 then
        send("/jasco/meter/change", "fii", beat, num, den)
      end
    end
  end
end

local function send_chord_notes(take)
  local _, note_count = reaper.MIDI_CountEvts(take)
  local types, values = {}, {}
  for i = 0, note_count - 1 do
    local _, _, muted, start_ppq, end_ppq, _, pitch, velocity = reaper.MIDI_GetNote(take, i)
    if not muted then
      local start_beat = reaper.MIDI_GetProjQNFromPPQPos(take, start_ppq)
      local end_beat = reaper.MIDI_GetProjQNFromPPQPos(take, end_ppq)
      types[#types + 1] = "ffii"
      for _, v in ipairs({ start_beat, end_beat - start_beat, pitch, math.max(velocity, 1) }) do
        values[#values + 1] = v
      end
    end
  end
  send("/jasco/chords/clear")
  if #values > 0 then
    send("/jasco/chords/notes", table.concat(types), table.unpack(values))
  end
  return #types
end

local function item_bars(item)
  local start_time = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
  local end_time = start_time + reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
  local _, first_measure = reaper.TimeMap2_timeToBeats(0, start_time)
  local end_beats, end_measure = reaper.TimeMap2_timeToBeats(0, end_time)
  local last_measure = end_measure
  if end_beats < 1e-6 then
    last_measure = end_measure - 1 -- an item ending exactly on a bar line
  end
  return first_measure + 1, math.max(1, last_measure - first_measure + 1)
end

local function start_listener(reply_file)
  local pid_file = reply_file .. ".pid"
  os.execute("oscdump -L " .. REPLY_PORT .. " > " .. shell_quote(reply_file) .. " 2>&1 & echo $! > "
    .. shell_quote(pid_file))
  local handle = io.open(pid_file, "r")
  local pid = handle and handle:read("*l")
  if handle then handle:close() end
  os.remove(pid_file)
  return pid
end

local function watch_replies(reply_file, pid, track, started)
  local done_path, done_beat, failure
  local handle = io.open(reply_file, "r")
  if handle then
    for line in handle:lines() do
      if line:find("/jasco/done", 1, true) then
        local path, beat = line:match('"([^"]+%.wav)"%s+([%d%.%-]+)')
        if path then done_path, done_beat = path, tonumber(beat) end
      elseif line:find("/jasco/error", 1, true) then
        failure = line:match('"(.*)"') or line
      end
    end
    handle:close()
  end
  local timed_out = reaper.time_precise() - started > WAIT_SECONDS
  if not done_path and not failure and not timed_out then
    reaper.defer(function() watch_replies(reply_file, pid, track, started) end)
    return
  end
  if pid then os.execute("kill " .. pid) end
  os.remove(reply_file)
  if failure then
    reaper.ShowMessageBox(failure, "jasco-bridge", 0)
  elseif timed_out then
    reaper.ShowMessageBox("No clip after " .. WAIT_SECONDS .. " s: is `jasco-bridge serve "
      .. "--reply-port " .. REPLY_PORT .. "` running?", "jasco-bridge", 0)
  else
    reaper.Undo_BeginBlock()
    reaper.SetOnlyTrackSelected(track)
    reaper.SetEditCurPos(reaper.TimeMap2_QNToTime(0, done_beat), false, false)
    reaper.InsertMedia(done_path, 0) -- 0: on the selected track at the edit cursor
    reaper.Undo_EndBlock("Insert JASCO clip", -1)
  end
end

local function main()
  local item = reaper.GetSelectedMediaItem(0, 0)
  local take = item and reaper.GetActiveTake(item)
  if not take or not reaper.TakeIsMIDI(take) then
    reaper.ShowMessageBox("Select the MIDI item that holds the chords first.", "jasco-bridge", 0)
    return
  end
  local last_prompt = reaper.GetExtState(SECTION, "prompt")
  local ok, prompt = reaper.GetUserInputs("JASCO render", 1, "Prompt:,extrawidth=300", last_prompt)
  if not ok then return end
  reaper.SetExtState(SECTION, "prompt", prompt, true)

  local reply_file = os.tmpname()
  local pid = start_listener(reply_file)
  send_tempo_map()
  if send_chord_notes(take) == 0 then
    reaper.ShowMessageBox("The selected item has no (unmuted) notes.", "jasco-bridge", 0)
    if pid then os.execute("kill " .. pid) end
    return
  end
  send("/jasco/prompt", "s", prompt)
  local first_bar, bars = item_bars(item)
  send("/jasco/render", "ii", first_bar, bars)
  watch_replies(reply_file, pid, reaper.GetMediaItem_Track(item), reaper.time_precise())
end

main()
