"""The renderers: a JASCO engine that loads the released checkpoints, and a preview synthesiser.

No OSC, no DAW concepts, no `midi` imports: the engine takes chord indices per frame.
"""
