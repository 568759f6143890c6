"""Musical time and symbols for jasco-bridge: tempo maps, MIDI files, chords, JASCO's vocabulary.

No torch, no OSC: everything here is plain Python (plus mido and numpy).
"""
