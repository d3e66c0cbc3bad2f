// Email through nodemailer: SMTP when SMTP_URL is set; otherwise each message is written as an
// .eml file under DATA_DIR/mail (and logged), so the default is real and visible without a server.
import fs from 'node:fs/promises'
import path from 'node:path'
import nodemailer from 'nodemailer'
import type { Logger } from 'pino'

export interface Message { to: string, subject: string, text: string, html: string }
export interface Mailer {
  send: (message: Message) => Promise<{ messageId: string }>
  close: () => void
}

export function createMailer ({ smtpUrl, from, mailDir, log }: { smtpUrl?: string, from: string, mailDir: string, log: Pick<Logger, 'info'> }): Mailer {
  if (smtpUrl !== undefined) {
    const transport = nodemailer.createTransport(smtpUrl, { from })
    return {
      send: async (message) => {
        const info = await transport.sendMail(message)
        return { messageId: info.messageId }
      },
      close: () => { transport.close() },
    }
  }
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' }, { from })
  return {
    send: async (message) => {
      const info = await transport.sendMail(message)
      await fs.mkdir(mailDir, { recursive: true })
      const file = path.join(mailDir, `${new Date().toISOString().replaceAll(':', '-')}-${info.messageId.replace(/[^\w.-]/g, '')}.eml`)
      await fs.writeFile(file, info.message as Buffer)
      log.info({ to: message.to, subject: message.subject, file }, 'email written to file (SMTP_URL is not set)')
      return { messageId: info.messageId }
    },
    close: () => { transport.close() },
  }
}
