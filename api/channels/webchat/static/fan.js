// Starts the unmodified rasa-webchat 1.0.1 widget against the switchboard that served this page.
(function () {
  "use strict";
  // The browser's language goes to the switchboard as a hint (the greeting's language, and a
  // fallback for messages too short to tell); the page's own words exist in EN and ES.
  var browser = (navigator.language || "en").slice(0, 2).toLowerCase();
  var language = browser === "es" ? "es" : "en";
  window.WebChat.default(
    {
      socketUrl: window.location.origin,
      socketPath: "/socket.io/",
      // Sent when the fan first opens the chat (not again after a reload): the bot greets first.
      initPayload: "/greet",
      customData: { language: browser },
      title: "Aurora Ibiza",
      subtitle: language === "es" ? "Estamos aquí para ayudarte" : "We're here to help",
      inputTextFieldHint: language === "es" ? "Escribe un mensaje..." : "Type a message...",
      // The widget's default holds each bot message back by up to 3 s ("typing"); a fan who
      // needs a person should read who is taking over at once.
      customMessageDelay: function () { return 300; },
      params: { storage: "local" }
    },
    document.getElementById("webchat")
  );
})();
