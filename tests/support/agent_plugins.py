"""STT, LLM and TTS for a real livekit-agents AgentSession, written against the plugin
interfaces and answering locally: no provider, no network. Each counts the streams it opened,
which is how a test sees the session's audio path restarted."""

from __future__ import annotations

from typing import Any

from livekit.agents import APIConnectOptions, llm, stt, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

SAMPLE_RATE = 16_000


class FakeSTT(stt.STT):
    def __init__(self) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False))
        self.streams = 0

    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        return stt.SpeechEvent(type=stt.SpeechEventType.FINAL_TRANSCRIPT,
                               alternatives=[stt.SpeechData(language="en", text="")])

    def stream(
        self, *, language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        self.streams += 1
        return _SilentStream(stt=self, conn_options=conn_options, sample_rate=SAMPLE_RATE)


class _SilentStream(stt.RecognizeStream):
    async def _run(self) -> None:
        async for _ in self._input_ch:
            pass


class FakeLLM(llm.LLM):
    def __init__(self, reply: str = "Hello.") -> None:
        super().__init__()
        self.reply = reply
        self.streams = 0

    def chat(self, *, chat_ctx: llm.ChatContext, tools: list[Any] | None = None,
             conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
             **_: Any) -> llm.LLMStream:
        self.streams += 1
        return _ReplyStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _ReplyStream(llm.LLMStream):
    async def _run(self) -> None:
        reply = self._llm.reply  # type: ignore[attr-defined]
        self._event_ch.send_nowait(
            llm.ChatChunk(id="fake", delta=llm.ChoiceDelta(role="assistant", content=reply))
        )


class FakeTTS(tts.TTS):
    def __init__(self) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False),
                         sample_rate=SAMPLE_RATE, num_channels=1)
        self.streams = 0

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> Any:
        self.streams += 1
        return _Tone(tts=self, input_text=text, conn_options=conn_options)


class _Tone(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(request_id="fake", sample_rate=SAMPLE_RATE, num_channels=1,
                                  mime_type="audio/pcm")
        output_emitter.push(b"\x00\x00" * (SAMPLE_RATE // 10))
        output_emitter.flush()
