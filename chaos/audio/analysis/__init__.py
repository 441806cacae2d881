"""Pure analysis of what a thick listener hears: echo, freezes, silence, sequence, E-model.

No I/O, no asyncio, no clocks: every function takes arrays and numbers and returns frozen
values, so the same code judges a live run and a unit test.

    reference.reference(first_seq, count, seed)   the speaker's test signal as sent
    echo.measure_echo(received, reference)        delayed copies, 30-1000 ms, in dB
    gaps.heard_slots / gaps.freezes               playout gaps from the frame timeline
    gaps.silences(received, reference)            dead air in the decoded audio
    sequence.identify_frame(pcm, near_seq)        which frame a decoded frame carries
    emodel.mos(delay_ms, loss)                    ITU-T G.107 E-model
"""
