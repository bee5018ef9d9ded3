// Starts the unmodified rasa-webchat 1.0.1 widget against the switchboard that served this page.
(function () {
  "use strict";
  var language = (navigator.language || "en").slice(0, 2) === "es" ? "es" : "en";
  window.WebChat.default(
    {
      socketUrl: window.location.origin,
      socketPath: "/socket.io/",
      // Sent when the fan first opens the chat (not again after a reload): the bot greets first.
      initPayload: "/greet",
      customData: { language: language },
      title: "Aurora Ibiza",
      subtitle: language === "es" ? "Estamos aquí para ayudarte" : "We're here to help",
      inputTextFieldHint: language === "es" ? "Escribe un mensaje..." : "Type a message...",
      params: { storage: "local" }
    },
    document.getElementById("webchat")
  );
})();
