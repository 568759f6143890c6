"""JascoBridge: render the selected MIDI clip with JASCO (through jasco-bridge) and get the
audio back on a "JASCO" track, at the clip's start in the arrangement or in the next free
slot in session view. See README.txt in this folder."""

from .surface import JascoSurface


def create_instance(c_instance):
    return JascoSurface(c_instance)
