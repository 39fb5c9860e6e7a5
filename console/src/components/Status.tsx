import { createContext, type ReactNode, useCallback, useContext, useState } from "react";

// One polite live region for the whole app: what just happened ("Paused 3 jobs").
const Announce = createContext<(message: string) => void>(() => undefined);

export function StatusProvider({ children }: { children: ReactNode }) {
  const [message, setMessage] = useState("");
  const announce = useCallback((text: string) => {
    setMessage("");
    window.setTimeout(() => setMessage(text), 30); // a repeated message is announced again
  }, []);
  return (
    <Announce.Provider value={announce}>
      <div role="status" aria-live="polite" className={message ? "status status-shown" : "status"}>
        {message}
      </div>
      {children}
    </Announce.Provider>
  );
}

export const useAnnounce = () => useContext(Announce);
