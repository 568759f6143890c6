--[[
jasco-bridge companion script for REAPER (ReaScript, Lua). Windows, macOS and Linux.

Select the MIDI item that holds your chords, run this action, type a prompt: the item's bars are
rendered by `jasco-bridge serve` and the clip lands on a track named "JASCO" (created when
missing), exactly on the item's first bar, as one undo point. A small window shows the progress;
close it to cancel the render. REAPER never freezes while it waits.

How: the project's tempo map and meters, the item's notes (in quarter notes from the project
start), the prompt and the bar range go into one JSON request (docs/request.md) that
`jasco-bridge request` sends over TCP; its replies are read back from a file it appends to. The
whole item goes in one request, however long or dense. Only this run's job is ever taken: the
request carries its own token. Without a fixed seed every run draws a new one.

Setup:
  1. Install jasco-bridge (see its README), then start `jasco-bridge serve`.
  2. `jasco-bridge daw install reaper` copies this script into REAPER's Scripts folder; then in
     REAPER: Actions > Show action list > New action > Load ReaScript... > pick it.
  3. If REAPER cannot find `jasco-bridge` (it does not always see your shell's PATH), type its
     full path (`jasco-bridge daw install reaper` prints it) in the dialog's "jasco-bridge
     command" field once; the dialog remembers it, as it does the prompt, seed and port.
The dialog separates its fields with "|", so a prompt cannot contain one.
]]

local SECTION = "jasco_bridge"
local WAIT_SECONDS = 3600
local WINDOWS = reaper.GetOS():match("^Win") ~= nil
local SEP = WINDOWS and "\\" or "/"

-- ------------------------------------------------------------------------------- JSON

local function json_string(s)
  local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
  return '"' .. s:gsub('[%c"\\]', function(c)
    return named[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_value(v)
  local kind = type(v)
  if kind == "string" then return json_string(v) end
  if kind == "number" then
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  if kind == "boolean" then return tostring(v) end
  if kind == "table" then
    local items = {}
    if v.__array or v[1] ~= nil then
      for _, x in ipairs(v) do items[#items + 1] = json_value(x) end
      return "[" .. table.concat(items, ",") .. "]"
    end
    for key, x in pairs(v) do items[#items + 1] = json_string(key) .. ":" .. json_value(x) end
    return "{" .. table.concat(items, ",") .. "}"
  end
  return "null"
end

-- One flat JSON object per line (strings, numbers, booleans, null), as `request` prints them.
local function parse_event(line)
  if line:sub(1, 1) ~= "{" then return nil end
  local event, i = {}, 2
  local function skip() i = line:find("[^%s,]", i) or #line + 1 end
  local function read_string()
    local out, j = {}, i + 1
    while j <= #line do
      local c = line:sub(j, j)
      if c == '"' then i = j + 1; return table.concat(out) end
      if c == "\\" then
        local e = line:sub(j + 1, j + 1)
        if e == "u" then
          local code = tonumber(line:sub(j + 2, j + 5), 16)
          out[#out + 1] = utf8 and utf8.char(code) or (code < 128 and string.char(code) or "?")
          j = j + 6
        else
          out[#out + 1] = ({ n = "\n", r = "\r", t = "\t", b = "\b", f = "\f" })[e] or e
          j = j + 2
        end
      else
        out[#out + 1] = c
        j = j + 1
      end
    end
    return nil
  end
  while true do
    skip()
    if line:sub(i, i) ~= '"' then break end
    local key = read_string()
    i = line:find(":", i, true) + 1
    skip()
    if line:sub(i, i) == '"' then
      event[key] = read_string()
    else
      local raw = line:match("^[^,}%s]+", i)
      i = i + #raw
      if raw == "true" then event[key] = true
      elseif raw == "false" then event[key] = false
      elseif raw ~= "null" then event[key] = tonumber(raw) end
    end
  end
  return event
end

-- ------------------------------------------------------------------------------- the project

-- Double quotes work for both the Windows command line and a POSIX shell.
local function quote(arg)
  return '"' .. arg:gsub('(\\*)"', '%1%1\\"'):gsub("(\\+)$", "%1%1") .. '"'
end

local function tempo_map(until_time)
  local first_num, first_den, first_bpm = reaper.TimeMap_GetTimeSigAtTime(0, 0)
  local map = {
    tempo = { bpm = first_bpm, numerator = first_num, denominator = first_den },
    tempo_changes = { __array = true },
    meter_changes = { __array = true },
  }
  for i = 0, reaper.CountTempoTimeSigMarkers(0) - 1 do
    local _, time, _, _, bpm, num, den = reaper.GetTempoTimeSigMarker(0, i)
    if time <= until_time then
      local beat = reaper.TimeMap2_timeToQN(0, time)
      if beat < 1e-9 then
        map.tempo.bpm = bpm
        if num > 0 then map.tempo.numerator, map.tempo.denominator = num, den end
      else
        map.tempo_changes[#map.tempo_changes + 1] = { beat = beat, bpm = bpm }
        if num > 0 then
          map.meter_changes[#map.meter_changes + 1] = { beat = beat, numerator = num, denominator = den }
        end
      end
    end
  end
  return map
end

local function item_notes(take, first_qn, last_qn)
  local notes = { __array = true }
  local _, count = reaper.MIDI_CountEvts(take)
  for i = 0, count - 1 do
    local _, _, muted, start_ppq, end_ppq, _, pitch, velocity = reaper.MIDI_GetNote(take, i)
    local start_qn = reaper.MIDI_GetProjQNFromPPQPos(take, start_ppq)
    local end_qn = math.min(reaper.MIDI_GetProjQNFromPPQPos(take, end_ppq), last_qn)
    if not muted and start_qn >= first_qn - 1e-9 and start_qn < last_qn - 1e-9 then
      notes[#notes + 1] = {
        start_beat = start_qn, length_beats = math.max(0, end_qn - start_qn),
        pitch = pitch, velocity = math.max(1, velocity),
      }
    end
  end
  return notes
end

-- 1-based first bar and bar count covering [start, end) of the item.
local function item_bars(start_time, end_time)
  local _, first_measure = reaper.TimeMap2_timeToBeats(0, start_time)
  local in_bar, end_measure = reaper.TimeMap2_timeToBeats(0, end_time)
  local last_measure = in_bar < 1e-6 and end_measure - 1 or end_measure -- ends on a bar line
  return first_measure + 1, math.max(1, last_measure - first_measure + 1)
end

local function jasco_track()
  for i = 0, reaper.CountTracks(0) - 1 do
    local track = reaper.GetTrack(0, i)
    local _, name = reaper.GetTrackName(track)
    if name == "JASCO" then return track end
  end
  local index = reaper.CountTracks(0)
  reaper.InsertTrackAtIndex(index, true)
  local track = reaper.GetTrack(0, index)
  reaper.GetSetMediaTrackInfo_String(track, "P_NAME", "JASCO", true)
  return track
end

local function place_clip(path, start_bar, bars)
  local bar_time = reaper.TimeMap2_beatsToTime(0, 0, start_bar - 1)
  local cursor = reaper.GetCursorPosition()
  reaper.Undo_BeginBlock()
  local track = jasco_track()
  reaper.SetOnlyTrackSelected(track)
  reaper.SetEditCurPos(bar_time, false, false)
  reaper.InsertMedia(path, 0) -- 0: onto the selected track, at the edit cursor
  reaper.SetEditCurPos(cursor, false, false)
  reaper.Undo_EndBlock(string.format("JASCO render bars %d-%d", start_bar, start_bar + bars - 1), -1)
  reaper.UpdateArrange()
end

-- ------------------------------------------------------------------------------- waiting

local function draw(text, fraction)
  gfx.set(0.15, 0.15, 0.15)
  gfx.rect(0, 0, gfx.w, gfx.h, true)
  gfx.set(0.3, 0.7, 0.4)
  gfx.rect(10, 34, math.floor((gfx.w - 20) * fraction), 14, true)
  gfx.set(0.9, 0.9, 0.9)
  gfx.x, gfx.y = 10, 10
  gfx.drawstr(text)
  gfx.update()
end

local function watch(job)
  local file = io.open(job.events, "r")
  if file then
    file:seek("set", job.offset)
    for line in file:lines() do
      local event = parse_event(line)
      if event and event.token == job.token then
        if event.event == "ack" then
          job.status = "queued as job " .. tostring(event.job)
        elseif event.event == "progress" then
          job.status, job.fraction = "rendering", event.fraction
        elseif event.event == "done" then
          job.done = event
        elseif event.event == "error" or event.event == "cancelled" then
          job.problem = event.message or "the render was cancelled"
        end
      elseif event and event.event == "error" then
        job.problem = event.message
      end
    end
    job.offset = file:seek()
    file:close()
  end
  local closed = gfx.getchar() < 0
  local late = reaper.time_precise() - job.started > WAIT_SECONDS
  if not (job.done or job.problem) then
    if closed or late then
      local stop = io.open(job.cancel, "w")
      if stop then stop:close() end
      if late then
        reaper.ShowMessageBox("No clip after " .. WAIT_SECONDS .. " s; the render was cancelled. "
          .. "Is `jasco-bridge serve` running?", "JASCO", 0)
      end
      gfx.quit()
      return
    end
    draw(string.format("JASCO bars %d-%d: %s", job.start_bar, job.start_bar + job.bars - 1, job.status),
      job.fraction)
    reaper.defer(function() watch(job) end)
    return
  end
  gfx.quit()
  os.remove(job.request)
  if job.problem then
    reaper.ShowMessageBox("JASCO render failed: " .. job.problem, "JASCO", 0)
  else
    place_clip(job.done.path, job.done.start_bar, job.done.bars)
  end
end

-- ------------------------------------------------------------------------------- main

local function main()
  local item = reaper.GetSelectedMediaItem(0, 0)
  local take = item and reaper.GetActiveTake(item)
  if not take or not reaper.TakeIsMIDI(take) then
    reaper.ShowMessageBox("Select the MIDI item that holds the chords first.", "JASCO", 0)
    return
  end
  local remembered = {
    reaper.GetExtState(SECTION, "prompt"),
    reaper.GetExtState(SECTION, "seed"),
    reaper.GetExtState(SECTION, "port") ~= "" and reaper.GetExtState(SECTION, "port") or "9000",
    reaper.GetExtState(SECTION, "command") ~= "" and reaper.GetExtState(SECTION, "command") or "jasco-bridge",
  }
  local ok, answers = reaper.GetUserInputs("JASCO render", 4,
    "Prompt:,Seed (empty = new each run):,Daemon TCP port:,jasco-bridge command:,extrawidth=300,separator=|",
    table.concat(remembered, "|"))
  if not ok then return end
  local prompt, seed, port, command = answers:match("^(.-)|(.-)|(.-)|(.*)$")
  for key, value in pairs({ prompt = prompt, seed = seed, port = port, command = command }) do
    reaper.SetExtState(SECTION, key, value, true)
  end

  local start_time = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
  local end_time = start_time + reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
  local start_bar, bars = item_bars(start_time, end_time)
  local notes = item_notes(take, reaper.TimeMap2_timeToQN(0, start_time), reaper.TimeMap2_timeToQN(0, end_time))
  if #notes == 0 then
    reaper.ShowMessageBox("The selected item has no (unmuted) notes.", "JASCO", 0)
    return
  end

  local token = string.format("reaper-%d-%d", os.time(), math.random(1, 1000000000))
  local folder = reaper.GetResourcePath() .. SEP .. "jasco-bridge"
  reaper.RecursiveCreateDirectory(folder, 0)
  local job = {
    token = token, start_bar = start_bar, bars = bars, status = "sending", fraction = 0,
    request = folder .. SEP .. token .. ".json", events = folder .. SEP .. token .. ".jsonl",
    cancel = folder .. SEP .. token .. ".cancel", offset = 0, started = reaper.time_precise(),
  }
  local request = tempo_map(end_time)
  request.session = "reaper"
  request.notes = notes
  request.prompt = prompt
  request.start_bar = start_bar
  request.bars = bars
  request.token = token
  request.settings = {}
  if seed ~= "" then request.settings.seed = tonumber(seed) end
  local out = io.open(job.request, "w")
  if not out then
    reaper.ShowMessageBox("Cannot write " .. job.request, "JASCO", 0)
    return
  end
  out:write(json_value(request), "\n")
  out:close()

  local line = table.concat({
    command, "request", quote(job.request), "--port", tostring(tonumber(port) or 9000),
    "--events-file", quote(job.events), "--cancel-file", quote(job.cancel),
  }, " ")
  reaper.ExecProcess(line, -1) -- -1: start it and return at once
  gfx.init("JASCO render", 420, 60)
  watch(job)
end

main()
